"""`shardsim run SCENARIO.py|DIR [--seed N] [--sim [--check-determinism]]`: run chaos scenarios, print progress
and a summary table.

`--sim` runs them in simulation (one process, virtual time, replayed exactly by its seed; docs/simulation.md);
`--check-determinism` runs each twice in fresh processes and compares their histories byte for byte.

Exit code: 0 every invariant held, 1 a correctness violation, 2 a liveness failure (something stuck, a
plan that waited in vain), 3 the tool itself failed. A failure prints the seed and the command that
replays it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from cluster.launcher.external import cluster_from_args, external_args_add
from cluster.runner.events import Event
from cluster.runner.run import RunOptions, RunResult, run_scenario
from cluster.runner.scenario import scenario_paths
from cluster.runner.step import StepController
from cluster.ui.server import live_page_args_add, live_page_start
from node import clock

EXIT_PRIORITY = {1: 0, 2: 1, 3: 2, 0: 3}  # correctness first, then liveness, then the tool


def run_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim run` (wired in cluster/cli.py)."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("target", type=Path, help="a scenario file, or a folder of them")
    parser.add_argument("--seed", metavar="N", type=int, default=1, help="the seed of every random choice (default 1)")
    parser.add_argument("--runs-dir", metavar="DIR", type=Path, default=Path("runs"),
                        help="each run writes its report in a new folder here (default runs)")
    parser.add_argument("--step", action="store_true", help="pause before each coordinator decision")
    parser.add_argument("--step-delay-s", metavar="SECONDS", type=float, default=None, help="with --step: go on after this delay")
    live_page_args_add(parser, "serve the live page while it runs")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    parser.add_argument("--sim", action="store_true",
                        help="simulate: one process, virtual time, a seed replays the run exactly (Python 3.12+)")
    parser.add_argument("--check-determinism", action="store_true",
                        help="with --sim: run each scenario twice in fresh processes and compare the histories")
    external_args_add(parser)


class Progress:
    """Live progress lines: phases from the runner, and the events a person wants to see."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = clock.monotonic()

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{clock.monotonic() - self.started:7.2f}s] {text}", flush=True)

    def on_event(self, event: Event) -> None:
        line = event_line(event)
        if line:
            self.say(line)


def event_line(event: Event) -> str | None:
    kind = event.get("kind", "")
    if kind == "replica.state":
        return (f"replica {event.get('collection')}/{event.get('shard')} on peer {event.get('peer')}: "
                f"{event.get('from') or '-'} -> {event.get('to') or 'removed'} ({event.get('rule')})")
    if kind in ("transfer.started", "transfer.finished", "transfer.aborted"):
        reason = f": {event.get('reason')}" if kind == "transfer.aborted" else ""
        return (f"{kind} shard {event.get('shard')} {event.get('from')} -> {event.get('to')} "
                f"(attempt {event.get('attempt')}){reason}")
    if kind == "transfer.phase" and event.get("phase") in ("attempt_failed", "restored", "partial"):
        extra = f": {event.get('reason')}" if event.get("phase") == "attempt_failed" else ""
        return f"transfer shard {event.get('shard')} attempt {event.get('attempt')}: {event.get('phase')}{extra}"
    if kind in ("fault.applied", "fault.healed"):
        return f"{kind} {event.get('fault')} on {event.get('target')}"
    return None


async def run_all(args: argparse.Namespace) -> list[RunResult]:
    progress = Progress(args.quiet)
    results = []
    for path in scenario_paths(args.target):
        step = StepController(args.step_delay_s) if args.step else None
        options = RunOptions(runs_dir=args.runs_dir, step=args.step, step_delay_s=args.step_delay_s,
                             quiet=args.quiet, cluster_factory=partial(cluster_from_args, args))
        options.on_event = combine(progress.on_event, step.on_event if step else None)
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            hooks = await extras_start(stack, args, step, session, options)
            options.on_cluster = hooks
            progress.say(f"scenario {path} seed {args.seed}")
            result = await run_scenario(path, args.seed, options, progress.say)
        results.append(result)
        verdict_print(result)
    return results


def combine(*callbacks: Any) -> Any:
    def call(event: Event) -> None:
        for callback in callbacks:
            if callback is not None:
                callback(event)
    return call


async def extras_start(stack: contextlib.AsyncExitStack, args: argparse.Namespace, step: StepController | None,
                       session: aiohttp.ClientSession, options: RunOptions) -> Any:
    """Step mode and the live page. The page subscribes before the cluster starts (so it sees every node
    start), which needs a broker first: an embedded one unless one is given."""
    tasks = await stack.enter_async_context(asyncio.TaskGroup())
    started: list[asyncio.Task[None]] = []
    stack.callback(lambda: [task.cancel() for task in started])
    if args.ui:
        cluster_name = args.cluster_name or f"shardsim-run-{os.getpid()}"
        mqtt_url = await live_page_start(stack, args.mqtt_url, cluster_name, args.ui_port)
        options.cluster_options.update(mqtt_url=mqtt_url, cluster_name=cluster_name)

    async def on_cluster(cluster: Any) -> None:
        if step is not None:
            step.coordinator_url = cluster.coordinator_url
            step.headers = cluster.headers
            started.append(tasks.create_task(step.run(session), name="step"))
    return on_cluster


def verdict_print(result: RunResult) -> None:
    print(f"\n{result.scenario} (seed {result.seed}): {result.exit_kind.upper()} in {result.seconds:.1f} s")
    for check in result.results:
        mark = {True: "held", False: "VIOLATED", None: "unknown"}[check.valid]
        print(f"  {check.name:<20} {mark:<9} {check.summary}")
    print(f"  report: {result.report}")
    if result.exit_code != 0:
        print(f"  replay: {result.command}")


def summary_print(results: list[RunResult]) -> None:
    if len(results) < 2:
        return
    print("\nscenario                               seed  verdict       seconds")
    for result in results:
        print(f"{result.scenario:<38} {result.seed:>4}  {result.exit_kind:<12} {result.seconds:8.1f}")


def exit_code_of(results: list[RunResult]) -> int:
    return exit_code_of_codes([result.exit_code for result in results])


def exit_code_of_codes(codes: list[int]) -> int:
    """The one exit code of several runs: correctness first, then liveness, then the tool; 3 for none."""
    return min(codes or [3], key=lambda code: EXIT_PRIORITY.get(code, 2))


def sim_refusal(args: argparse.Namespace) -> str | None:
    """Why `--sim` cannot run as asked (this interpreter, or an option that needs real processes), if so."""
    from cluster.sim.support import unavailable_reason
    reason = unavailable_reason()
    if reason is not None:
        return reason
    unsupported = [flag for flag, given in (("--external", args.external), ("--ui", args.ui), ("--step", args.step))
                   if given]
    if unsupported:
        return f"{', '.join(unsupported)} need real processes; run without --sim"
    return None


def sim_run_main(args: argparse.Namespace) -> int:
    """`shardsim run --sim`: the simulation path of `run_main`; ends the process itself (see cluster/sim/run.py)."""
    reason = sim_refusal(args)
    if reason is not None:
        print(f"shardsim run --sim: {reason}", file=sys.stderr)
        return 3
    from cluster.sim import run as sim_run
    if args.check_determinism:
        code = exit_code_of_codes(sim_run.determinism_check(args))
    else:
        results = sim_run.sim_main(args, verdict_print, event_line)
        summary_print(results)
        code = exit_code_of(results)
    sim_run.process_end(code)
    return code


def run_main(args: argparse.Namespace) -> int:
    """`shardsim run` with the options of `run_arguments_add`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.target.exists():
        print(f"shardsim run: {args.target} does not exist", file=sys.stderr)
        return 3
    if args.check_determinism and not args.sim:
        print("shardsim run: --check-determinism compares simulated replays; add --sim", file=sys.stderr)
        return 3
    if args.sim:
        return sim_run_main(args)
    try:
        results = asyncio.run(run_all(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 3
    summary_print(results)
    return exit_code_of(results)
