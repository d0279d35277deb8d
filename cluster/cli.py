"""The `shardsim` command: one entry point, one argparse subcommand per job.

Each command lives beside its code: the module named in `COMMANDS` has `<name>_arguments_add(parser)`,
which adds the command's options to its subparser, and `<name>_main(args) -> int`, which runs it. Only the
chosen command's module is imported (the others pull in brokers, browsers' pages, the runner), so
`shardsim --help` lists every command from the table below without loading any of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

EXIT_UNAVAILABLE = 3


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str


COMMANDS = (
    Command("run", "cluster.runner.cli", "run chaos scenarios (a file or a folder) and write their reports"),
    Command("replay", "cluster.explore.cli", "run one schedule (JSON, format 1) with the usual report"),
    Command("explore", "cluster.explore.cli", "generate schedules from seeds, run and judge them, map the "
                                              "coverage, shrink what fails"),
    Command("up", "cluster.launcher.cli", "start a local cluster (or join one), print its endpoints, run until "
                                          "Ctrl-C"),
    Command("ui", "cluster.ui.server", "serve the live web page of a cluster, from its events"),
    Command("watch", "cluster.events.cli", "a live terminal view of peers, shards, replica states and transfers"),
    Command("events", "cluster.events.cli", "print the events of a cluster, one line each (or raw JSON)"),
    Command("proxy", "cluster.proxy.server", "the Toxiproxy-compatible fault proxy alone"),
    Command("demo", "cluster.demo", "one node, a sample collection, a snapshot and its checksum"),
)

EPILOG = ("Run `shardsim COMMAND --help` for a command's options. Environment: SHARDSIM_MQTT_URL (the event "
          "bus), SHARDSIM_CLUSTER (the cluster name), and the external-mode variables of `shardsim up --help`.")


def parser_build(chosen: str | None = None) -> argparse.ArgumentParser:
    """The `shardsim` parser, every command listed; the options of `chosen` only (its module is imported)."""
    parser = argparse.ArgumentParser(prog="shardsim", description="shardsim: a Qdrant-compatible cluster "
                                     "simulator with fault injection and chaos scenarios.", epilog=EPILOG)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        subparser = commands.add_parser(command.name, help=command.summary, description=command.summary[0].upper()
                                        + command.summary[1:] + ".")
        if command.name == chosen:
            module = importlib.import_module(command.module)
            getattr(module, f"{command.name}_arguments_add")(subparser)
            subparser.set_defaults(main=getattr(module, f"{command.name}_main"))
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command `argv` names (its first word, when it is one), else None."""
    names = {command.name for command in COMMANDS}
    return argv[0] if argv and argv[0] in names else None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] == "help":
        args = [*args[1:2], "--help"]
    chosen = command_of(args)
    try:
        parser = parser_build(chosen)
    except ModuleNotFoundError as error:
        print(f"shardsim {chosen}: not available in this build ({error})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    parsed = parser.parse_args(args)
    return int(parsed.main(parsed) or 0)


if __name__ == "__main__":
    sys.exit(main())
