"""The `shardsim` command: one entry point, one subcommand per job.

    shardsim run SCENARIO|DIR [--seed N]   run chaos scenarios and write reports (the main job)
    shardsim up --nodes 3                  start a local cluster and print its endpoints
    shardsim proxy --port 8474             the Toxiproxy-compatible fault proxy alone
    shardsim events / watch                the event bus: raw stream, or a live view
    shardsim demo                          one node, a sample collection and a snapshot
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "run": ("cluster.runner.cli", "run_main"),
    "up": ("cluster.launcher.cli", "up_main"),
    "ui": ("cluster.ui.server", "ui_main"),
    "proxy": ("cluster.proxy.server", "main"),
    "events": ("cluster.events.cli", "events_main"),
    "watch": ("cluster.events.cli", "watch_main"),
    "demo": ("cluster.demo", "demo_main"),
}


def usage() -> str:
    return __doc__ or ""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"shardsim: unknown command {name!r}\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        print(f"shardsim {name}: not available in this build ({error})", file=sys.stderr)
        return 3
    result = getattr(module, function_name)(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
