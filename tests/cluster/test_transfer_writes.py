"""Move and replicate a shard while a writer upserts through several nodes: nothing acknowledged is lost.

Reference: docs/cluster.md, "A snapshot transfer, step by step": the source queues updates made
during the transfer, the target restores the streamed snapshot, goes Partial, the queue is replayed, the
target becomes Active, and a move drops the source replica. Afterwards every replica of a shard has the same
digest and every acknowledged id can be read through every node.
"""

from __future__ import annotations

from cluster.launcher import Cluster
from node.protocol import shard_replicas
from node.retry import wait_until
from tests.cluster.helpers import (
    ClusterApi,
    Writer,
    digests_of,
    replica_map,
    wait_converged,
)
from tests.helpers import points_make

PRELOADED = 8000


async def test_move_and_replicate_under_concurrent_writes(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=2, replication_factor=2, size=32)
    await api.upsert_ok("n2", "c", points_make(range(PRELOADED), size=32))
    replicas = replica_map(await api.state(), "c")
    missing = {shard: next(p for p in (1, 2, 3) if p not in peers) for shard, peers in replicas.items()}
    move_source = min(replicas[1])
    async with Writer(api, "c", ["n1", "n2", "n3"], batch_points=25, size=32) as writer:
        await writer.wait_acked(200)
        await api.ok("n3", "POST", "/collections/c/cluster", {"replicate_shard": {
            "shard_id": 0, "from_peer_id": min(replicas[0]), "to_peer_id": missing[0]}})
        await api.ok("n1", "POST", "/collections/c/cluster", {"move_shard": {
            "shard_id": 1, "from_peer_id": move_source, "to_peer_id": missing[1]}})

        async def transfers_done() -> bool:
            state = await api.state()
            return not state["transfers"] and shard_replicas(state, "c", 1).get(missing[1]) == "Active"
        acked_at_start = len(writer.acked)
        await wait_until(transfers_done, 60.0, what="both transfers to finish")
        assert len(writer.acked) > acked_at_start, "writes went on during the transfers"
        await writer.wait_acked(len(writer.acked) + 200)
    assert not writer.refused and not writer.unknown
    after = replica_map(await api.state(), "c")
    assert sorted(after[0]) == [1, 2, 3]
    assert sorted(after[1]) == sorted(set(replicas[1]) - {move_source} | {missing[1]})
    await wait_converged(api, "c")
    source_name = cluster.name_of(move_source)
    assert "1" not in (await digests_of(api, [source_name]))[source_name]["c"], "the move dropped the source"
    acked = list(range(PRELOADED)) + writer.acked
    for node in ("n1", "n2", "n3"):
        assert await api.retrieve_ids(node, "c", acked) == set(acked)
        assert await api.count(node, "c") == len(acked)
