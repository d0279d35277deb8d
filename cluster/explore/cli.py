"""`shardsim replay SCHEDULE.json [--sim]` and `shardsim explore [--sim] [--seeds N | --budget 10m] [--workers K]`.

`replay` runs one schedule (cluster/explore/schedule.py) through the scenario runner, with the usual
progress, verdicts and report, on real processes or in simulation. Exit code as `shardsim run`.

`explore` draws schedules from consecutive seeds (steered toward coverage cells not yet reached), runs them
in K worker processes, judges each with every checker that fits it, prints a line per run and a summary,
writes `coverage.json` and `coverage.html`, and shrinks what it found (`--shrink`, on by default) into
`scenarios/found/` (or `--found-dir`). `--until-covered K` runs until every reachable cell was reached K
times (or the budget ends). Exit code: 0 nothing violated, 1 a violation was found, 3 the tool failed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

from cluster.explore.schedule import ScheduleError, schedule_load
from cluster.explore.workers import schedule_execute, sim_unavailable


def sim_end(code: int) -> int:
    """After a simulated run in this process: end it without finalizing what killed hosts left."""
    try:
        from cluster.sim.run import process_end
    except ImportError:
        return code
    process_end(code)
    return code


# -- replay -------------------------------------------------------------------------------------------------

def replay_arguments_add(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("schedule", type=Path, help="a schedule JSON file (format 1)")
    parser.add_argument("--sim", action="store_true", help="run it in simulation (Python 3.12+, exact replay)")
    parser.add_argument("--runs-dir", metavar="DIR", type=Path, default=Path("runs"),
                        help="the run writes its report in a new folder here (default runs)")
    parser.add_argument("--quiet", action="store_true", help="only the verdicts")


def replay_main(args: argparse.Namespace) -> int:
    from cluster.runner.cli import Progress, event_line, verdict_print
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        schedule = schedule_load(args.schedule)
    except ScheduleError as error:
        print(f"shardsim replay: {error}", file=sys.stderr)
        return 3
    if args.sim and (reason := sim_unavailable()) is not None:
        print(f"shardsim replay --sim: {reason}", file=sys.stderr)
        return 3
    progress = Progress(args.quiet)
    progress.say(f"schedule {args.schedule} ({schedule['name']}, seed {schedule['seed']}, "
                 f"{'simulation' if args.sim else 'real processes'})")

    def on_event(event: dict[str, Any]) -> None:
        line = event_line(event)
        if line:
            progress.say(line)
    # in simulation, progress and events are printed with the virtual time (cluster/sim/run.py)
    result, summary = schedule_execute(schedule, args.runs_dir, args.sim, args.quiet, args.schedule, progress.say,
                                       None if args.sim else on_event)
    verdict_print(result)
    if summary.cells:
        print(f"  coverage cells reached: {', '.join(summary.cells)}")
    return sim_end(result.exit_code) if args.sim else result.exit_code


# -- explore ------------------------------------------------------------------------------------------------

def duration_s(text: str) -> float:
    """`90s`, `10m`, `1h`, or seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def explore_arguments_add(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--sim", action="store_true", help="run schedules in simulation (Python 3.12+)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--seeds", metavar="N", type=int, default=None, help="run N schedules (default 20)")
    amount.add_argument("--budget", metavar="TIME", type=duration_s, default=None,
                        help="run schedules until this much time passed (90s, 10m, 1h)")
    parser.add_argument("--until-covered", metavar="K", type=int, default=None,
                        help="stop once every reachable cell was reached K times (within --seeds or --budget; "
                             "alone, within an hour)")
    parser.add_argument("--workers", metavar="K", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--seed", metavar="S", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--size", metavar="STEPS", type=int, default=None,
                        help="operations per schedule (default: drawn, about 3 to 10)")
    parser.add_argument("--runs-dir", metavar="DIR", type=Path, default=Path("runs"),
                        help="the exploration's folder is made here (default runs)")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink what is found")
    parser.add_argument("--found-dir", metavar="DIR", type=Path, default=Path("scenarios/found"),
                        help="where shrunk findings are written (default scenarios/found)")
    parser.add_argument("--shrink-runs", metavar="N", type=int, default=None,
                        help="at most N runs to shrink one finding (default 80 in simulation, 24 real)")
    parser.add_argument("--confirm-real", action="store_true",
                        help="after shrinking in simulation, run the shrunk schedule on real processes")
    parser.add_argument("--quiet", action="store_true", help="only findings and the summary")


def explore_main(args: argparse.Namespace) -> int:
    from cluster.explore.loop import exploration_run
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.sim and (reason := sim_unavailable()) is not None:
        print(f"shardsim explore --sim: {reason}", file=sys.stderr)
        return 3
    return exploration_run(args)
