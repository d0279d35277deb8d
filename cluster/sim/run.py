"""Running scenarios in simulation, and proving that a seed replays: `shardsim run X --sim [--check-determinism]`.

`scenario_run_sim` runs one scenario (a file or a `Scenario`) with the runner's own `scenario_run` on a
fresh `SimEngine`: the node clock and random source come from the seed (`node.clock.installed`), the event
bus is in memory (`cluster.sim.bus.installed`), and the cluster is a `SimCluster`. Nothing else differs
from a real run: the same plan, nemesis, history, checkers and report.

`determinism_check` runs each scenario twice, in two fresh processes (side by side) with different
`PYTHONHASHSEED`s, and compares the two `history.jsonl` byte for byte and the two `verdicts.json`; on a
difference it prints the first differing line of each.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cluster.nemesis import Nemesis
from cluster.runner.events import Event
from cluster.runner.run import RunOptions, RunResult, replay_command, scenario_run
from cluster.runner.scenario import Scenario, scenario_load, scenario_paths
from cluster.sim import bus, engine
from cluster.sim.cluster import SimCluster
from node import clock

T = TypeVar("T")
DETERMINISM_HASH_SEEDS = ("1", "2")
CHILD_TIMEOUT_S = 1800


@dataclasses.dataclass
class SimRun:
    """A simulated run's result and what it cost."""

    result: RunResult
    wall_s: float
    virtual_s: float
    steps: int


def run_dir_new(options: RunOptions, scenario: Scenario, seed: int) -> Path:
    """A new run folder under `options.runs_dir`, named by the real time (every replay of a seed has the same
    virtual time, and a folder holds one run: the nodes would find the data of the previous one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")  # not simulated: the folder is named by when the user ran it
    name = f"{scenario.name}-seed{seed}-sim-{stamp}"
    folder, number = options.runs_dir / name, 1
    while folder.exists():
        number += 1
        folder = options.runs_dir / f"{name}-{number}"
    return folder.resolve()


def scenario_run_sim(target: Path | Scenario, seed: int, options: RunOptions, quiet: bool = False,
                     event_line: Callable[[Event], str | None] | None = None, command: str | None = None) -> SimRun:
    """Run a scenario (a file, or a `Scenario` built in code, replayed by `command`) in simulation with `seed`;
    the run folder is made under `options.runs_dir`. Unless `quiet`, progress is printed with the virtual
    time, and each event `event_line` gives a line for."""
    loop = engine.SimEngine(seed)
    scenario = target if isinstance(target, Scenario) else scenario_load(target)
    if command is None:
        command = replay_command(target if isinstance(target, Path) else Path(f"<{scenario.name}>"), seed, sim=True)

    def say(text: str) -> None:
        if not quiet:
            print(f"[{loop.time():8.2f}s virtual] {text}", flush=True)

    def on_event(event: Event) -> None:
        line = event_line(event) if event_line is not None else None
        if line:
            say(line)
    options = dataclasses.replace(options, sim=True, cluster_factory=SimCluster,
                                  run_dir=options.run_dir or run_dir_new(options, scenario, seed),
                                  on_event=options.on_event or on_event)
    started = time.perf_counter()  # not simulated: the real time the run costs (the bench's figure)
    with clock.installed(loop.runtime()), bus.installed(bus.SimBus(loop, seed)):
        result: RunResult = loop.run(scenario_run(scenario, seed, options, say, command))
        virtual_s = loop.time()
    wall_s = time.perf_counter() - started  # not simulated: as above
    return SimRun(result, wall_s, virtual_s, loop.steps)


def case_run_sim(case: Callable[[SimCluster, Nemesis], Awaitable[T]], seed: int, run_dir: Path, nodes: int = 3,
                 **options: Any) -> T:
    """Run `await case(cluster, nemesis)` on a fresh simulated cluster of `nodes` nodes with `seed` (the pytest
    plugin's `shardsim_sim`); faults still in force are healed after it. An exception says the seed."""
    loop = engine.SimEngine(seed)

    async def main() -> T:
        cluster = SimCluster(nodes=nodes, run_dir=run_dir, **options)
        async with cluster:
            nemesis = Nemesis(cluster, cluster.events)
            try:
                return await case(cluster, nemesis)
            finally:
                await nemesis.heal_all()
    with clock.installed(loop.runtime()), bus.installed(bus.SimBus(loop, seed)):
        try:
            result: T = loop.run(main())
        except Exception as error:
            error.add_note(f"(in simulation with seed {seed}: the same seed replays it exactly; logs in {run_dir})")
            raise
    return result


def sim_main(args: argparse.Namespace, verdict_print: Callable[[RunResult], None],
             event_line: Callable[[Event], str | None]) -> list[RunResult]:
    """`shardsim run --sim`: every scenario of `args.target` in simulation, one after the other."""
    results = []
    for path in scenario_paths(args.target):
        if not args.quiet:
            print(f"scenario {path} seed {args.seed} (simulated)", flush=True)
        run = scenario_run_sim(path, args.seed, RunOptions(runs_dir=args.runs_dir, quiet=args.quiet), args.quiet,
                               event_line)
        results.append(run.result)
        verdict_print(run.result)
        print(f"  simulated {run.virtual_s:.1f} virtual s in {run.wall_s:.1f} s ({run.steps} steps)", flush=True)
    return results


def process_end(code: int) -> None:
    """End this process now, after flushing: what killed incarnations left (`engine.GRAVEYARD`) must never be
    finalized (a collected coroutine runs its `finally`, a collected file flushes its buffer)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if "cluster.sim.engine" in sys.modules and engine.GRAVEYARD:
        os._exit(code)


# -- exact replay ---------------------------------------------------------------------------------------------

def first_difference(a: bytes, b: bytes) -> tuple[int, str, str] | None:
    """(line number from 1, line of a, line of b) where two files first differ; None when equal."""
    if a == b:
        return None
    lines_a, lines_b = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for number, (line_a, line_b) in enumerate(zip(lines_a, lines_b, strict=False), start=1):
        if line_a != line_b:
            return number, line_a, line_b
    number = min(len(lines_a), len(lines_b)) + 1
    return number, (lines_a[number - 1] if number <= len(lines_a) else "(end of file)"), \
        (lines_b[number - 1] if number <= len(lines_b) else "(end of file)")


def replay_child(path: Path, seed: int, runs_dir: Path, hash_seed: str) -> tuple[int, Path | None, str]:
    """Run one simulated replay in a fresh process; (exit code, its run folder, the end of its output)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cluster.cli", "run", str(path), "--sim", "--seed", str(seed),
               "--runs-dir", str(runs_dir), "--quiet"]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
    return done.returncode, (folders[-1] if folders else None), tail


def determinism_check(args: argparse.Namespace) -> list[int]:
    """Every scenario twice in fresh processes; per scenario 3 if its replays differ, else the runs' exit code."""
    codes: list[int] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")  # not simulated: names the folder of the two replays
    for path in scenario_paths(args.target):
        base = args.runs_dir / f"determinism-{path.stem}-seed{args.seed}-{stamp}"
        with concurrent.futures.ThreadPoolExecutor(len(DETERMINISM_HASH_SEEDS)) as replays:  # side by side
            runs = list(replays.map(replay_child, [path] * 2, [args.seed] * 2,
                                    [base / "replay-1", base / "replay-2"], DETERMINISM_HASH_SEEDS))
        folders = [folder for _code, folder, _tail in runs]
        if any(folder is None or not (folder / "history.jsonl").exists() for folder in folders):
            print(f"{path} seed {args.seed}: a replay wrote no history:\n" + "\n".join(t for _c, _f, t in runs))
            codes.append(3)
            continue
        assert folders[0] is not None and folders[1] is not None
        histories = [(folder / "history.jsonl").read_bytes() for folder in folders if folder is not None]
        verdicts = [(folder / "verdicts.json").read_bytes() for folder in folders if folder is not None]
        difference = first_difference(*histories)
        if difference is None and verdicts[0] == verdicts[1] and runs[0][0] == runs[1][0]:
            lines = histories[0].count(b"\n")
            print(f"{path} seed {args.seed}: deterministic ({lines} history lines identical, same verdicts, "
                  f"exit {runs[0][0]}; PYTHONHASHSEED {' and '.join(DETERMINISM_HASH_SEEDS)})", flush=True)
            codes.append(runs[0][0])
            continue
        print(f"{path} seed {args.seed}: NOT deterministic", flush=True)
        if difference is not None:
            number, line_a, line_b = difference
            print(f"  history.jsonl differs first at line {number}:\n    {folders[0]}: {line_a}\n"
                  f"    {folders[1]}: {line_b}")
        else:
            print(f"  the histories are equal but the verdicts differ: {folders[0]} {folders[1]}")
        codes.append(3)
    return codes
