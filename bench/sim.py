"""Benchmark of the simulation: the scenario folder simulated against real processes, and virtual time per wall second.

A script, not a test, for Python 3.12+ with the `sim` extra:
`python bench/sim.py [--seed 1] [--target scenarios] [--rounds 1] [--jobs K] [--idle-s 600] [--busy-s 20]`.
In one run it
- runs every scenario of `--target` three ways, each command a fresh process, `--rounds` times in turn (so
  a busy machine weighs on all three alike): on real processes as `shardsim run DIR` does, one scenario at a
  time (a real scenario already runs 5 processes on every core); in simulation in one process
  (`shardsim run DIR --sim --jobs 1`); in simulation in K worker processes (`--sim --jobs K`, K the cores
  this process may use, as `shardsim run DIR --sim` does by default). It prints the wall and CPU seconds of
  each (CPU: user and system time of the command and every process it waited for) and the ratios of the real
  wall time to the simulated ones (goal >= 10);
- starts a simulated 3-node cluster and lets it idle for `--idle-s` virtual seconds (its nodes pull the state,
  the coordinator checks their health): virtual seconds per wall second;
- the same cluster busy for `--busy-s` virtual seconds: 4 writers each upserting a batch of 100 points
  (`wait=true`) every 0.1 s into a collection with replication factor 2 (4,000 points/s, what the
  scenarios' writers do, an open loop: CPU costs no virtual time, so writers that never wait would write
  without bound) while a shard is replicated: virtual seconds per wall second, and the points written.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.sim.support import unavailable_reason  # noqa: E402

VECTOR_SIZE = 32
CALL_TIMEOUT_S = 30.0
WRITE_INTERVAL_S = 0.1


@dataclasses.dataclass
class FolderRun:
    wall_s: float
    cpu_s: float
    code: int

    def text(self) -> str:
        return f"{self.wall_s:.1f} s ({self.cpu_s:.1f} s CPU{'' if self.code == 0 else f', EXIT {self.code}'})"


def folder_run(target: Path, seed: int, runs_dir: Path, sim_jobs: int | None) -> FolderRun:
    """`shardsim run TARGET` (real processes) or `shardsim run TARGET --sim --jobs K` in a fresh process."""
    command = [sys.executable, "-m", "cluster.cli", "run", str(target), "--seed", str(seed), "--quiet",
               "--runs-dir", str(runs_dir), *([] if sim_jobs is None else ["--sim", "--jobs", str(sim_jobs)])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return FolderRun(elapsed, cpu_s, done.returncode)


def folder_rounds(target: Path, seed: int, rounds: int, jobs: int, folder: Path) -> None:
    """The scenario folder real, simulated in one process, and simulated in `jobs` processes, in turn."""
    count = len(list(target.glob("*.py"))) if target.is_dir() else 1
    ratios_one, ratios_jobs = [], []
    for number in range(1, rounds + 1):
        real = folder_run(target, seed, folder / f"real-{number}", None)
        one = folder_run(target, seed, folder / f"sim1-{number}", 1)
        many = folder_run(target, seed, folder / f"sim{jobs}-{number}", jobs)
        ratios_one.append(real.wall_s / one.wall_s)
        ratios_jobs.append(real.wall_s / many.wall_s)
        print(f"{count} scenarios, seed {seed}, round {number}: real processes, one scenario at a time, "
              f"{real.text()}; simulation in one process {one.text()}: {ratios_one[-1]:.1f}x; simulation in "
              f"{jobs} worker processes {many.text()}: **{ratios_jobs[-1]:.1f}x** faster than real", flush=True)
    if rounds > 1:
        print(f"over {rounds} rounds: simulation in one process {min(ratios_one):.1f}-{max(ratios_one):.1f}x, "
              f"in {jobs} worker processes **{min(ratios_jobs):.1f}-{max(ratios_jobs):.1f}x** faster than real")


async def writer(session: aiohttp.ClientSession, urls: list[str], ids: itertools.count[int], stop: asyncio.Event,
                 rng: random.Random) -> int:
    """A batch of 100 points every `WRITE_INTERVAL_S` (or as soon as the last one is answered, if later)."""
    written = 0
    loop = asyncio.get_running_loop()
    for url in itertools.cycle(urls):
        if stop.is_set():
            return written
        next_s = loop.time() + WRITE_INTERVAL_S
        body = {"points": [{"id": next(ids), "vector": [rng.random() for _ in range(VECTOR_SIZE)]}
                           for _ in range(100)]}
        async with session.put(f"{url}/collections/bench/points?wait=true", json=body) as response:
            await response.read()
            if response.status == 200:
                written += 100
        await asyncio.sleep(max(0.0, next_s - loop.time()))
    return written


async def idle_and_busy(cluster: Any, nemesis: Any, idle_s: float, busy_s: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    started_wall, started_virtual = time.perf_counter(), loop.time()
    await asyncio.sleep(idle_s)
    idle = (loop.time() - started_virtual) / (time.perf_counter() - started_wall)
    urls = [cluster.node_url(name) for name in cluster.node_names()]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)) as session:
        async with session.put(f"{urls[0]}/collections/bench", json={
                "vectors": {"size": VECTOR_SIZE, "distance": "Dot"}, "shard_number": 2,
                "replication_factor": 2}) as response:
            response.raise_for_status()
        from cluster.pytest_plugin import wait_replicas_active
        await wait_replicas_active(cluster, "bench")
        stop, ids = asyncio.Event(), itertools.count(1)
        started_wall, started_virtual = time.perf_counter(), loop.time()
        writers = [asyncio.create_task(writer(session, urls, ids, stop, random.Random(n))) for n in range(4)]
        await asyncio.sleep(busy_s / 4)
        info = await (await session.get(f"{urls[0]}/collections/bench/cluster")).json()
        holders = {s["shard_id"]: s for s in info["result"]["local_shards"]}
        if 0 in holders:
            target = next(p for p in (1, 2, 3) if p != info["result"]["peer_id"])
            await session.post(f"{urls[0]}/collections/bench/cluster", json={
                "replicate_shard": {"shard_id": 0, "from_peer_id": info["result"]["peer_id"], "to_peer_id": target}})
        await asyncio.sleep(busy_s * 3 / 4)
        stop.set()
        written = sum(await asyncio.gather(*writers))
    busy = (loop.time() - started_virtual) / (time.perf_counter() - started_wall)
    return {"idle": idle, "busy": busy, "points": written}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=Path, default=ROOT / "scenarios")
    parser.add_argument("--idle-s", type=float, default=600.0)
    parser.add_argument("--busy-s", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="how many times to run the folder each way")
    parser.add_argument("--jobs", type=int, default=None, help="simulation worker processes (default: the cores)")
    parser.add_argument("--skip-folder", action="store_true", help="only the idle and busy figures")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"bench/sim.py: {reason}", file=sys.stderr)
        return 3
    from cluster.sim.run import case_run_sim
    with tempfile.TemporaryDirectory(prefix="shardsim-bench-sim-") as temporary:
        folder = Path(temporary)
        if not args.skip_folder:
            folder_rounds(args.target, args.seed, args.rounds, args.jobs or len(os.sched_getaffinity(0)), folder)
        figures = case_run_sim(lambda cluster, nemesis: idle_and_busy(cluster, nemesis, args.idle_s, args.busy_s),
                               args.seed, folder / "cluster", nodes=3)
    print(f"idle 3-node cluster: **{figures['idle']:.0f}** virtual s per wall s ({args.idle_s:.0f} virtual s)")
    print(f"busy 3-node cluster (4,000 points/s, replication factor 2, a shard replicated): **{figures['busy']:.2f}** "
          f"virtual s per wall s ({args.busy_s:.0f} virtual s, {figures['points']:.0f} points acknowledged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
