"""Benchmark of a shard transfer: moving 100,000 points of 128-dim vectors between two nodes.

A script, not a test: `python bench/transfer.py [--points 100000] [--size 128] [--seconds 3]`. In one run,
on a 2-node cluster (`cluster.launcher.Cluster`), it
1. fills a 1-shard collection on n1 and reads the plain shard stream
   (`GET /collections/{c}/shards/{s}/snapshot`, 1 MiB chunks) through the n2->n1 proxy link, the path the
   transfer's download takes, and directly;
2. moves the shard n1 -> n2 (`move_shard`, method snapshot) and times it until the target is Active and the
   source dropped; prints seconds, MB/s and the ratio to the plain download (target >= 0.5), and where the
   time went (start, stream, restore, partial/replay/active) from the transfer's phase events;
3. measures write throughput (batches of 100, wait=true, 2 writers) with no transfer, then during a move back
   n2 -> n1, and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.events.subscriber import events_stream  # noqa: E402
from cluster.launcher import Cluster  # noqa: E402

CHUNK_BYTES = 1 << 20
CALL_TIMEOUT_S = 600.0
FILL_BATCH_POINTS = 2000
WRITE_BATCH_POINTS = 100
WRITERS = 2


def points_body(ids: range | list[int], size: int, rng: random.Random) -> dict[str, Any]:
    return {"points": [{"id": i, "vector": [round(rng.random(), 6) for _ in range(size)], "payload": {"i": i}}
                       for i in ids]}


async def fill(session: aiohttp.ClientSession, url: str, points: int, size: int) -> None:
    async with session.put(f"{url}/collections/bench", json={
            "vectors": {"size": size, "distance": "Dot"}, "shard_number": 1, "replication_factor": 1}) as response:
        assert response.status == 200, await response.text()
    rng = random.Random(1)
    for start in range(0, points, FILL_BATCH_POINTS):
        body = points_body(range(start, min(start + FILL_BATCH_POINTS, points)), size, rng)
        async with session.put(f"{url}/collections/bench/points?wait=true", json=body) as response:
            assert response.status == 200, await response.text()


async def download(session: aiohttp.ClientSession, address: str) -> tuple[int, float]:
    """Read the shard stream in 1 MiB chunks: (bytes, seconds)."""
    started = time.monotonic()
    size = 0
    async with session.get(f"http://{address}/collections/bench/shards/0/snapshot") as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
    return size, time.monotonic() - started


async def holders(session: aiohttp.ClientSession, cluster: Cluster) -> tuple[dict[str, str], bool]:
    async with session.get(f"{cluster.coordinator_url}/internal/state") as response:
        state = await response.json()
    return state["collections"]["bench"]["shards"]["0"], bool(state["transfers"])


async def move(session: aiohttp.ClientSession, cluster: Cluster, source: int, target: int) -> float:
    """Move shard 0 and wait until only the target holds it, Active; returns seconds."""
    started = time.monotonic()
    async with session.post(f"{cluster.node_url('n1')}/collections/bench/cluster", json={"move_shard": {
            "shard_id": 0, "from_peer_id": source, "to_peer_id": target, "method": "snapshot"}}) as response:
        assert response.status == 200, await response.text()
    while True:
        replicas, running = await holders(session, cluster)
        if not running and replicas == {str(target): "Active"}:
            return time.monotonic() - started
        if time.monotonic() - started > CALL_TIMEOUT_S:
            raise TimeoutError(f"move not finished: {replicas}")
        await asyncio.sleep(0.005)  # fine-grained: the move itself takes a fraction of a second


async def write_rate(session: aiohttp.ClientSession, urls: list[str], ids: itertools.count[int], size: int,
                     until: asyncio.Future[Any] | float) -> float:
    """Points/s acknowledged by WRITERS writers until a deadline (monotonic s) or until a task is done."""
    started = time.monotonic()

    def over() -> bool:
        return until.done() if isinstance(until, asyncio.Future) else time.monotonic() >= until

    async def one(seed: int) -> int:
        rng, written = random.Random(seed), 0
        for url in itertools.cycle(urls):
            if over():
                return written
            body = points_body([next(ids) for _ in range(WRITE_BATCH_POINTS)], size, rng)
            async with session.put(f"{url}/collections/bench/points?wait=true", json=body) as response:
                await response.read()
                written += WRITE_BATCH_POINTS if response.status == 200 else 0
        return written
    counts = await asyncio.gather(*(one(seed) for seed in range(WRITERS)))
    return sum(counts) / (time.monotonic() - started)


async def main_async(args: argparse.Namespace) -> None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as folder:
        async with Cluster(nodes=2, run_dir=Path(folder)) as cluster, \
                aiohttp.ClientSession(timeout=timeout) as session:
            url1 = cluster.node_url("n1")
            started = time.monotonic()
            await fill(session, url1, args.points, args.size)
            print(f"filled {args.points:,} points of {args.size}-dim vectors in {time.monotonic() - started:.1f} s")
            source = int(next(iter((await holders(session, cluster))[0])))
            target = 3 - source
            source_name, target_name = cluster.name_of(source), cluster.name_of(target)
            await download(session, cluster.nodes[source_name].address)  # warm-up: the first stream computes
            # the shard's digest (kept until the next write), which a move right after would not pay
            size, link_s = await download(session, cluster.links[f"{target_name}->{source_name}"])
            _, direct_s = await download(session, cluster.nodes[source_name].address)
            megabytes = size / 1e6
            print(f"shard stream: {megabytes:.1f} MB; plain download through the {target_name}->{source_name} "
                  f"link {link_s:.2f} s ({megabytes / link_s:.1f} MB/s), direct {direct_s:.2f} s "
                  f"({megabytes / direct_s:.1f} MB/s)")
            async with phases_recorded(cluster) as events:
                move_s = await move(session, cluster, source, target)
                await asyncio.sleep(0.3)  # the last events' delivery
            print(f"move {source_name} -> {target_name}: {move_s:.2f} s, {megabytes / move_s:.1f} MB/s; ratio to "
                  f"the plain download through the link {link_s / move_s:.2f} (target >= 0.5), "
                  f"to the direct download {direct_s / move_s:.2f}")
            print(phases_text(events))
            await write_effect(session, cluster, target, source, args)


@contextlib.asynccontextmanager
async def phases_recorded(cluster: Cluster) -> AsyncIterator[list[dict[str, Any]]]:
    """The transfer events published meanwhile (each stamped by its publisher, the coordinator)."""
    events: list[dict[str, Any]] = []
    subscribed = asyncio.Event()

    async def record() -> None:
        stream = events_stream(cluster.mqtt_url, cluster.cluster_name, on_subscribed=subscribed.set)
        async with contextlib.aclosing(stream) as received:
            async for event in received:
                if str(event.get("kind", "")).startswith("transfer."):
                    events.append(event)
    task = asyncio.ensure_future(record())
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def phases_text(events: list[dict[str, Any]]) -> str:
    """Where a move's time went, from its phase events: start, stream, restore, finish (ms)."""
    at: dict[str, float] = {}
    for event in events:
        phase = "started" if event["kind"] == "transfer.started" else str(event.get("phase"))
        at.setdefault(phase, float(event["ts"]))
        if event["kind"] == "transfer.finished":
            at["finished"] = float(event["ts"])
    marks = ("started", "queue_installed", "streamed", "restored", "finished")
    if not all(mark in at for mark in marks):
        return f"phases: incomplete ({sorted(at)})"
    spans = [("start", "started", "queue_installed"), ("stream", "queue_installed", "streamed"),
             ("restore", "streamed", "restored"), ("partial, replay, active", "restored", "finished")]
    return "phases: " + ", ".join(f"{name} {1000 * (at[end] - at[begin]):.0f} ms" for name, begin, end in spans)


async def write_effect(session: aiohttp.ClientSession, cluster: Cluster, holder: int, other: int,
                       args: argparse.Namespace) -> None:
    urls = [cluster.node_url(name) for name in cluster.node_names()]
    ids = itertools.count(args.points)
    quiet = await write_rate(session, urls, ids, args.size, time.monotonic() + args.seconds)
    moving = asyncio.ensure_future(move(session, cluster, holder, other))
    try:
        during = await write_rate(session, urls, ids, args.size, moving)
        move_s = await moving
    finally:
        moving.cancel()
    print(f"writes ({WRITERS} writers, batches of {WRITE_BATCH_POINTS}, wait=true): {quiet:,.0f} points/s without "
          f"a transfer, {during:,.0f} points/s during a move ({move_s:.2f} s); ratio {during / quiet:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
