"""Benchmark of the simulation: the scenario folder simulated against real processes, and virtual time per wall second.

A script, not a test, for Python 3.12+ with the `sim` extra:
`python bench/sim.py [--seed 1] [--target scenarios] [--idle-s 600] [--busy-s 20]`. In one run it
- runs every scenario of `--target` on real processes (`shardsim run`), then in simulation
  (`shardsim run --sim`), each as a fresh process, and prints both wall times and their ratio (goal >= 10);
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
import itertools
import random
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


def folder_wall_s(target: Path, seed: int, sim: bool, runs_dir: Path) -> tuple[float, int]:
    """Wall seconds of `shardsim run TARGET [--sim]` in a fresh process, and its exit code."""
    command = [sys.executable, "-m", "cluster.cli", "run", str(target), "--seed", str(seed), "--quiet",
               "--runs-dir", str(runs_dir), *(["--sim"] if sim else [])]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    return elapsed, done.returncode


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
            real_s, real_code = folder_wall_s(args.target, args.seed, False, folder / "real")
            sim_s, sim_code = folder_wall_s(args.target, args.seed, True, folder / "sim")
            count = len(list(args.target.glob("*.py"))) if args.target.is_dir() else 1
            print(f"{count} scenarios, seed {args.seed}: real processes {real_s:.1f} s (exit {real_code}), "
                  f"simulation {sim_s:.1f} s (exit {sim_code}): simulation **{real_s / sim_s:.1f}x** faster")
        figures = case_run_sim(lambda cluster, nemesis: idle_and_busy(cluster, nemesis, args.idle_s, args.busy_s),
                               args.seed, folder / "cluster", nodes=3)
    print(f"idle 3-node cluster: **{figures['idle']:.0f}** virtual s per wall s ({args.idle_s:.0f} virtual s)")
    print(f"busy 3-node cluster (4,000 points/s, replication factor 2, a shard replicated): **{figures['busy']:.2f}** "
          f"virtual s per wall s ({args.busy_s:.0f} virtual s, {figures['points']:.0f} points acknowledged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
