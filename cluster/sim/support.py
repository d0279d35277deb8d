"""Whether this interpreter can run a simulation, and what to do if not (one line, for `--sim`).

The simulation stands on simloop (pinned to 0.2.2, an optional extra: `pip install -e '.[sim]'`), which
needs Python 3.12 or newer; shardsim itself runs on 3.11. Importing this module imports no simloop.
"""

from __future__ import annotations

import importlib.metadata
import sys

SIMLOOP_VERSION = "0.2.2"  # the one cluster/sim/engine.py is written against (it checks too)
PYTHON_MIN = (3, 12)
HOW_TO = ("e.g. `PYENV_VERSION=3.13.0 python3 -m venv .venv-sim && .venv-sim/bin/pip install -e '.[sim]'`, "
          "then `.venv-sim/bin/shardsim run ... --sim`")


def unavailable_reason() -> str | None:
    """None when `--sim` can run here; otherwise one sentence saying why and how to get it."""
    if sys.version_info < PYTHON_MIN:
        return (f"the simulation needs Python {PYTHON_MIN[0]}.{PYTHON_MIN[1]}+ (simloop), this is "
                f"{sys.version_info[0]}.{sys.version_info[1]}: {HOW_TO}")
    try:
        version = importlib.metadata.version("simloop")
    except importlib.metadata.PackageNotFoundError:
        return f"the simulation needs simloop=={SIMLOOP_VERSION}, which is not installed: {HOW_TO}"
    if version != SIMLOOP_VERSION:
        return (f"the simulation is built on simloop=={SIMLOOP_VERSION}, found {version}: "
                f"pip install 'simloop=={SIMLOOP_VERSION}'")
    return None
