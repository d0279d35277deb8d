"""Benchmark of shard snapshots on one node: create, stream download and recover, against plain loopback.

A script, not a test: `python bench/snapshot.py [--points 100000] [--dim 128]`. It starts a node process
(`python -m node`) in a temporary directory, loads one shard with `--points` points of `--dim` float32
values (batch upserts), and prints:
  - snapshot create MB/s   (POST /collections/c/shards/0/snapshots, stored with its checksum)
  - stream download MB/s   (GET /collections/c/shards/0/snapshot, read by aiohttp in 1 MiB chunks)
  - recover MB/s and s     (PUT /collections/c/shards/0/snapshots/recover; target < 5 s)
  - the ratio of the stream download to a plain aiohttp server streaming a file of the same size in 1 MiB
    chunks over loopback, measured in the same run (target >= 0.5).
The baseline server runs as its own process (`--serve FILE --port P`), as the node does.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

CHUNK_BYTES = 1 << 20
MB = 1_000_000
TIMEOUT = aiohttp.ClientTimeout(total=600)
REPOSITORY = Path(__file__).resolve().parent.parent
COLLECTION = "bench"


def port_free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


@contextmanager
def process_running(args: list[str], ready_url: str, log_path: Path) -> Iterator[None]:
    """A child process, stopped by PID (SIGTERM, then SIGKILL) however the block ends."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY)
    try:
        wait_ready(ready_url, process)
        yield
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def serve_file(path: Path, port: int) -> None:
    """The baseline: a tiny aiohttp server streaming `path` in 1 MiB chunks (run in its own process)."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                await response.write(chunk)
        await response.write_eof()
        return response

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/file", stream)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def call(session: aiohttp.ClientSession, method: str, url: str, body: object = None) -> object:
    data = io.BytesIO(json.dumps(body).encode()) if body is not None else None
    async with session.request(method, url, data=data, headers={"Content-Type": "application/json"}) as reply:
        payload = await reply.json()
        if reply.status != 200:
            raise RuntimeError(f"{method} {url} -> {reply.status}: {payload}")
        return payload["result"]


async def load(session: aiohttp.ClientSession, base: str, points: int, dim: int, batch: int) -> float:
    await call(session, "PUT", f"{base}/collections/{COLLECTION}",
               {"vectors": {"size": dim, "distance": "Cosine"}, "shard_number": 1})
    rng = random.Random(1)
    start = time.perf_counter()
    for first in range(0, points, batch):
        batch_points = [{"id": point_id, "vector": [rng.random() for _ in range(dim)],
                         "payload": {"n": point_id}} for point_id in range(first, min(points, first + batch))]
        await call(session, "PUT", f"{base}/collections/{COLLECTION}/points?wait=true", {"points": batch_points})
    return time.perf_counter() - start


async def stream_read(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    start = time.perf_counter()
    size = 0
    async with session.get(url) as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
    return size, time.perf_counter() - start


async def measure(base: str, args: argparse.Namespace, work_dir: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    shard = f"{base}/collections/{COLLECTION}/shards/0"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        figures["load_s"] = await load(session, base, args.points, args.dim, args.batch)
        start = time.perf_counter()
        created = await call(session, "POST", f"{shard}/snapshots")
        assert isinstance(created, dict)
        figures["create_s"] = time.perf_counter() - start
        figures["snapshot_mb"] = created["size"] / MB
        streams = [await stream_read(session, f"{shard}/snapshot") for _ in range(args.repeat)]
        figures["stream_mb"] = streams[0][0] / MB
        figures["stream_s"] = statistics.median(seconds for _, seconds in streams)
        start = time.perf_counter()
        await call(session, "PUT", f"{shard}/snapshots/recover",
                   {"location": created["name"], "checksum": created["checksum"]})
        figures["recover_s"] = time.perf_counter() - start
    baseline_file = work_dir / "baseline.bin"
    baseline_file.write_bytes(os.urandom(streams[0][0]))
    port = port_free()
    with process_running([sys.executable, str(Path(__file__).resolve()), "--serve", str(baseline_file),
                          "--port", str(port)], f"http://127.0.0.1:{port}/readyz", work_dir / "baseline.log"):
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            plain = [await stream_read(session, f"http://127.0.0.1:{port}/file") for _ in range(args.repeat)]
    figures["plain_s"] = statistics.median(seconds for _, seconds in plain)
    return figures


def report(figures: dict[str, float], args: argparse.Namespace) -> None:
    size_mb = figures["snapshot_mb"]
    stream_rate = figures["stream_mb"] / figures["stream_s"]
    plain_rate = figures["stream_mb"] / figures["plain_s"]
    ratio = stream_rate / plain_rate
    print(f"shard of {args.points} points x {args.dim} dims: snapshot {size_mb:.1f} MB "
          f"(load {figures['load_s']:.1f} s)")
    print(f"snapshot create   {size_mb / figures['create_s']:8.1f} MB/s  ({figures['create_s']:.2f} s)")
    print(f"stream download   {stream_rate:8.1f} MB/s  ({figures['stream_s']:.2f} s, median of {args.repeat})")
    print(f"recover           {size_mb / figures['recover_s']:8.1f} MB/s  ({figures['recover_s']:.2f} s, "
          f"target < 5 s: {'met' if figures['recover_s'] < 5 else 'MISSED'})")
    print(f"plain aiohttp     {plain_rate:8.1f} MB/s  ({figures['plain_s']:.2f} s)")
    print(f"stream / plain    {ratio:8.2f}       (target >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve_file(args.serve, args.port)
        return 0
    with tempfile.TemporaryDirectory(prefix="shardsim-bench-") as temporary:
        work_dir = Path(temporary)
        port = port_free()
        node_args = [sys.executable, "-m", "node", "--port", str(port), "--data-dir", str(work_dir / "node"),
                     "--peer-id", "1"]
        with process_running(node_args, f"http://127.0.0.1:{port}/readyz", work_dir / "node.log"):
            figures = asyncio.run(measure(f"http://127.0.0.1:{port}", args, work_dir))
    report(figures, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
