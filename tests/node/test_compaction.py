"""Periodic compaction in a real node process: the WAL is folded into the base file and nothing is lost."""

from collections.abc import Callable

from node.retry import wait_until
from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess


async def test_compaction_shrinks_the_wal_and_keeps_every_point(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("n1", peer_id=1, extra_args=[
        "--compaction-wal-bytes", "20000", "--compaction-interval-s", "0.2"])
    async with NodeClient(node.url) as client:
        await client.collection_create("c")
        for start in range(0, 1000, 100):
            await client.points_upsert("c", points_make(range(start, start + 100)))
    shard_dir = node.data_dir / "collections" / "c" / "shards" / "0"

    async def compacted() -> bool:
        wal_bytes = sum(p.stat().st_size for p in shard_dir.glob("wal-*.log"))
        return (shard_dir / "points.msgpack").exists() and wal_bytes < 20000
    await wait_until(compacted, 20.0, 0.05, what="the WAL folded into the base file")
    node.kill()
    node.start()
    async with NodeClient(node.url) as client:
        assert (await client.ok("POST", "/collections/c/points/count", {"exact": True}))["count"] == 1000
