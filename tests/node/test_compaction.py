"""Periodic compaction in a real node process: the WAL is folded into the base file and nothing is lost."""

import aiohttp

from node.retry import wait_until
from tests.processes import NodeProcess


async def test_compaction_shrinks_the_wal_and_keeps_every_point(node_factory) -> None:
    node: NodeProcess = node_factory("n1", peer_id=1, extra_args=[
        "--compaction-wal-bytes", "20000", "--compaction-interval-s", "0.2"])
    async with aiohttp.ClientSession() as session:
        await session.put(f"{node.url}/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}})
        for start in range(0, 1000, 100):
            points = [{"id": i, "vector": [i, 1, 2, 3], "payload": {"i": i}} for i in range(start, start + 100)]
            async with session.put(f"{node.url}/collections/c/points?wait=true", json={"points": points}) as r:
                assert r.status == 200
    shard_dir = node.data_dir / "collections" / "c" / "shards" / "0"

    async def compacted() -> bool:
        wal_bytes = sum(p.stat().st_size for p in shard_dir.glob("wal-*.log"))
        return (shard_dir / "points.msgpack").exists() and wal_bytes < 20000
    await wait_until(compacted, 20.0, 0.05, what="the WAL folded into the base file")
    node.kill()
    node.start()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{node.url}/collections/c/points/count", json={"exact": True}) as response:
            assert (await response.json())["result"]["count"] == 1000
