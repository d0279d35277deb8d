"""Benchmark of the explorer: schedules judged per minute, in simulation and on real processes, and the time
to find and shrink a planted bug.

A script, not a test: `python bench/explore.py [--sim-seeds 60] [--real-seeds 3] [--workers 2]
[--plant move_keeps_source]`. In one run it prints
1. schedules judged per minute in simulation (`--sim-seeds` generated schedules, 3 nodes, `--size` steps
   each, `--workers` worker processes; goal: at least 100 per minute on 2 cores), with the mean virtual
   seconds a schedule simulates;
2. the same on real processes (`--real-seeds`, fewer: each run starts a cluster), and the ratio;
3. the time to find the planted bug `--plant` in simulation (seeds until the first violation) and to shrink
   it, with the runs the shrinking took and the size before and after.
Simulation needs Python 3.12+ with cluster/sim (docs/simulation.md); without it, the simulated figures are
skipped and say why. `--skip-real` leaves out part 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.explore.loop import Exploration, explore  # noqa: E402
from cluster.explore.schedule import schedule_size  # noqa: E402
from cluster.explore.shrink import finding_shrink_and_write  # noqa: E402
from cluster.explore.workers import sim_unavailable  # noqa: E402
from node.plant import ENVIRONMENT_VARIABLE  # noqa: E402


def rate(label: str, exploration: Exploration, wall_s: float, workers: int) -> float:
    runs = len(exploration.runs)
    per_minute = 60 * runs / wall_s
    virtual = statistics.mean(run.seconds for run in exploration.runs) if runs else 0.0
    steps = statistics.mean(len(run.schedule.get("steps", [])) for run in exploration.runs) if runs else 0.0
    print(f"{label}: {runs} schedules (mean {steps:.1f} operations, {virtual:.1f} s of cluster time each) in "
          f"{wall_s:.1f} s with {workers} worker(s): {per_minute:.0f} per minute; "
          f"{len(exploration.findings)} invariant(s) violated, {len(exploration.unjudged)} unjudged")
    return per_minute


def timed_explore(seeds: int, workers: int, size: int, folder: Path, sim: bool,
                  env: dict[str, str] | None = None, stop: bool = False) -> tuple[Exploration, float]:
    started = time.perf_counter()  # a benchmark measures real time
    exploration = explore(seeds, None, None, workers, 1, size, folder, sim, lambda _line: None, env,
                          stop_at_finding=stop)
    return exploration, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim-seeds", type=int, default=60)
    parser.add_argument("--real-seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=10, help="operations per schedule (default 10)")
    parser.add_argument("--plant", default="move_keeps_source", help="the bug to find and shrink")
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shardsim-bench-explore-"))
    print(f"runs in {folder}")
    reason = sim_unavailable()
    sim_rate = None
    if reason is None:
        exploration, wall_s = timed_explore(args.sim_seeds, args.workers, args.size, folder / "sim", True,
                                            {ENVIRONMENT_VARIABLE: ""})
        sim_rate = rate("simulation", exploration, wall_s, args.workers)
        print(f"  goal: at least 100 per minute: {'met' if sim_rate >= 100 else 'NOT met'}")
    else:
        print(f"simulation: skipped ({reason})")
    if not args.skip_real:
        exploration, wall_s = timed_explore(args.real_seeds, args.workers, args.size, folder / "real", False,
                                            {ENVIRONMENT_VARIABLE: ""})
        real_rate = rate("real processes", exploration, wall_s, args.workers)
        if sim_rate is not None and real_rate > 0:
            print(f"  simulation judges {sim_rate / real_rate:.0f} times as many schedules per minute")
    if reason is None:
        env = {ENVIRONMENT_VARIABLE: args.plant}
        exploration, wall_s = timed_explore(200, 1, args.size, folder / "plant", True, env, stop=True)
        if not exploration.findings:
            print(f"plant {args.plant}: not found in {len(exploration.runs)} seeds ({wall_s:.0f} s)")
            return 1
        invariant, runs = next(iter(exploration.findings.items()))
        print(f"plant {args.plant}: found ({invariant}) at seed {runs[0].seed}, after {len(exploration.runs)} "
              f"schedules and {wall_s:.1f} s")
        started = time.perf_counter()  # a benchmark measures real time
        result = finding_shrink_and_write(runs[0], invariant, folder / "plant", folder / "found", True,
                                          args.workers, None, False, lambda _line: None, env)
        shrink_s = time.perf_counter() - started
        before, after = schedule_size(runs[0].schedule), schedule_size(result.schedule)
        print(f"  shrunk in {shrink_s:.1f} s and {result.runs} runs: {before[1]} steps and {before[0]} faults -> "
              f"{after[1]} steps and {after[0]} faults; still violates {invariant}: {result.replayed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
