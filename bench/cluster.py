"""Benchmark of a local cluster: start-up time and replicated write throughput against a single node.

A script, not a test: `python bench/cluster.py [--seconds 5] [--writers 4] [--batch-points 100]`. In one run
it starts a 3-node cluster (`cluster.launcher.Cluster`, embedded broker and fault proxy) and times it until
every node is ready, then measures upserts (batches of points, `wait=true`, several concurrent writers,
round robin over the nodes) into a collection with replication factor 2; then it does the same against a
1-node cluster (replication factor 1). It prints points/s of both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.launcher import Cluster  # noqa: E402

CALL_TIMEOUT_S = 60.0
VECTOR_SIZE = 32


def batch_make(ids: list[int], rng: random.Random) -> dict[str, Any]:
    return {"points": [{"id": i, "vector": [rng.random() for _ in range(VECTOR_SIZE)], "payload": {"i": i}}
                       for i in ids]}


async def writer(session: aiohttp.ClientSession, urls: list[str], ids: itertools.count[int], batch_points: int,
                 deadline: float, seed: int) -> int:
    """Upsert batches until the deadline; returns the number of acknowledged points."""
    rng = random.Random(seed)
    written = 0
    for url in itertools.cycle(urls):
        if time.monotonic() >= deadline:
            return written
        body = batch_make([next(ids) for _ in range(batch_points)], rng)
        async with session.put(f"{url}/collections/bench/points?wait=true", json=body) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"upsert answered HTTP {response.status}")
        written += batch_points
    return written


async def throughput(cluster: Cluster, replication_factor: int, args: argparse.Namespace) -> float:
    """Points per second acknowledged by `args.writers` concurrent writers over `args.seconds`."""
    urls = [cluster.node_url(name) for name in cluster.node_names()]
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.put(f"{urls[0]}/collections/bench", json={
                "vectors": {"size": VECTOR_SIZE, "distance": "Dot"}, "shard_number": len(urls),
                "replication_factor": replication_factor}) as response:
            assert response.status == 200, await response.text()
        ids = itertools.count()
        await writer(session, urls, ids, args.batch_points, time.monotonic() + 0.5, 0)  # warm up
        started = time.monotonic()
        deadline = started + args.seconds
        counts = await asyncio.gather(*(writer(session, urls, ids, args.batch_points, deadline, seed)
                                        for seed in range(1, args.writers + 1)))
        return sum(counts) / (time.monotonic() - started)


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        started = time.monotonic()
        async with Cluster(nodes=3, run_dir=Path(folder) / "three") as cluster:
            startup_s = time.monotonic() - started
            print(f"cluster start-up (broker, proxy, coordinator, 3 nodes ready): {startup_s:.2f} s")
            replicated = await throughput(cluster, 2, args)
        async with Cluster(nodes=1, run_dir=Path(folder) / "one") as single:
            alone = await throughput(single, 1, args)
    print(f"writes, {args.writers} writers, batches of {args.batch_points} points, wait=true, "
          f"{VECTOR_SIZE}-dim vectors, {args.seconds:.0f} s each:")
    print(f"  3 nodes, replication factor 2: {replicated:,.0f} points/s")
    print(f"  1 node:                        {alone:,.0f} points/s")
    print(f"  ratio 3-node rf2 / single node: {replicated / alone:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch-points", type=int, default=100)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
