"""Every scenario in scenarios/ holds on this build. The tutorial's tests already run most of them; the
rest run here, so each of the 13 is run by the suite once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.py"))
TUTORIAL = "\n".join(p.read_text() for p in (ROOT / "docs" / "tutorial").glob("*.md"))
IN_TUTORIAL = set(re.findall(r"shardsim run scenarios/(\w+)\.py", TUTORIAL))
NOT_IN_TUTORIAL = [p for p in SCENARIOS if p.stem not in IN_TUTORIAL]


def test_there_are_at_least_twelve_scenarios_each_with_a_description() -> None:
    assert len(SCENARIOS) >= 12
    for path in SCENARIOS:
        text = path.read_text()
        assert text.startswith('"""') and "SCENARIO = Scenario(" in text, path.name


@pytest.mark.parametrize("path", NOT_IN_TUTORIAL, ids=[p.stem for p in NOT_IN_TUTORIAL])
def test_scenario_holds(path: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cluster.cli", "run", str(path.relative_to(ROOT)), "--seed",
                             "2", "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "VIOLATED" not in result.stdout
