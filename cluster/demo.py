"""`shardsim demo`: start one real node process, load a sample collection, take and verify a snapshot.

The smallest end-to-end run of the node: it prints the node's URL, the snapshot's name, size and checksum,
and checks the checksum of the downloaded bytes against the `.checksum` sidecar.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from cluster.ports import port_for_process
from node.retry import WaitTimeout, wait_until


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float) -> None:
    async def ready() -> bool:
        async with session.get(f"{url}/readyz") as response:
            return response.status == 200
    try:
        await wait_until(ready, timeout_s, interval_s=0.1, ignore=(aiohttp.ClientError,))
    except WaitTimeout:
        raise TimeoutError(f"node at {url} not ready after {timeout_s} s") from None


async def demo(url: str, points: int, out_dir: Path) -> int:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await wait_ready(session, url, 20)
        config = {"vectors": {"size": 8, "distance": "Cosine"}, "shard_number": 2}
        async with session.put(f"{url}/collections/sample", json=config) as response:
            response.raise_for_status()
        rng = random.Random(7)
        batch = [{"id": i, "vector": [rng.random() for _ in range(8)], "payload": {"n": i}}
                 for i in range(points)]
        async with session.put(f"{url}/collections/sample/points?wait=true", json={"points": batch}) as response:
            response.raise_for_status()
        async with session.post(f"{url}/collections/sample/snapshots") as response:
            snapshot = (await response.json())["result"]
        async with session.get(f"{url}/collections/sample/snapshots/{snapshot['name']}") as response:
            data = await response.read()
        path = out_dir / snapshot["name"]
        path.write_bytes(data)
        actual = hashlib.sha256(data).hexdigest()
        print(f"node       {url}")
        print(f"collection sample: {points} points in 2 shards")
        print(f"snapshot   {snapshot['name']}  {snapshot['size']} bytes")
        print(f"checksum   {snapshot['checksum']}  (download {'matches' if actual == snapshot['checksum'] else 'DIFFERS'})")
        print(f"saved to   {path}")
        return 0 if actual == snapshot["checksum"] else 1


def demo_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim demo` (wired in cluster/cli.py)."""
    parser.add_argument("--points", metavar="N", type=int, default=1000, help="points in the sample collection (default %(default)s)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path("runs/demo"),
                        help="where the downloaded snapshot is saved (default %(default)s)")


def demo_main(args: argparse.Namespace) -> int:
    """`shardsim demo` with the options of `demo_arguments_add`."""
    args.out.mkdir(parents=True, exist_ok=True)
    port = port_for_process(set())
    data_dir = Path(tempfile.mkdtemp(prefix="shardsim-demo-"))
    process = subprocess.Popen([sys.executable, "-m", "node", "--port", str(port), "--data-dir", str(data_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(demo(f"http://127.0.0.1:{port}", args.points, args.out))
    finally:
        process.terminate()
        process.wait(timeout=10)
