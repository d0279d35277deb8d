"""Cluster operations through REST and through the real `qdrant-client`: drop_replica, move, replicate, abort.

Reference: docs/cluster.md, "The cluster API" (its operations, errors, and qdrant-client's
`collection_cluster_info` and `cluster_collection_update`). The client is synchronous; it runs in a thread.
"""

from __future__ import annotations

import asyncio

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from cluster.launcher import Cluster
from node.retry import wait_until
from tests.cluster.helpers import (
    ClusterApi,
    assert_converged,
    digests_of,
    replica_map,
    wait_converged,
    wait_replica_state,
)
from tests.helpers import points_make


async def test_drop_replica_removes_it_and_refuses_what_qdrant_refuses(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await wait_converged(api, "c", replicas_per_shard=2)
    peers = sorted(replica_map(await api.state(), "c")[0])
    await api.upsert_ok("n1", "c", points_make(range(100)))
    outsider = next(p for p in (1, 2, 3) if p not in peers)
    refusals = [
        ({"shard_id": 0, "peer_id": outsider}, 400, f"Bad request: Peer {outsider} has no replica of shard 0"),
        ({"shard_id": 5, "peer_id": peers[0]}, 400, "Bad request: Shard 5 of c does not exist"),
        ({"shard_id": 0, "peer_id": 9}, 400, "Bad request: Peer 9 does not exist"),
    ]
    for operation, status, message in refusals:
        got_status, reply = await api.cluster_operation("n2", "c", {"drop_replica": operation})
        assert (got_status, reply["status"]["error"]) == (status, message)
    dropped, kept = peers
    assert await api.cluster_operation("n3", "c", {"drop_replica": {"shard_id": 0, "peer_id": dropped}}) == (
        200, {"result": True, "status": "ok", "time": pytest.approx(0, abs=5)})
    assert replica_map(await api.state(), "c") == {0: {kept: "Active"}}
    await wait_shard_gone(api, cluster.name_of(dropped))
    status, reply = await api.cluster_operation("n1", "c", {"drop_replica": {"shard_id": 0, "peer_id": kept}})
    assert status == 400
    assert reply["status"]["error"] == (f"Bad request: Shard 0 must have at least one active replica after "
                                        f"removing {kept}")
    for node in ("n1", "n2", "n3"):
        assert await api.count(node, "c") == 100


async def wait_shard_gone(api: ClusterApi, node: str) -> None:
    """The dropped replica's data leaves its node (the node reconciles with the pushed state)."""
    async def gone() -> bool:
        return "0" not in (await digests_of(api, [node]))[node].get("c", {})
    await wait_until(gone, 10.0, what=f"{node} to drop its copy of shard 0 of c")


def client_of(url: str) -> QdrantClient:
    return QdrantClient(url=url, timeout=30, check_compatibility=False)


async def test_qdrant_client_cluster_info_and_cluster_operations(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=1)
    await api.upsert_ok("n1", "c", points_make(range(300)))
    source = next(iter(replica_map(await api.state(), "c")[0]))
    first, second = (p for p in (1, 2, 3) if p != source)
    client = await asyncio.to_thread(client_of, cluster.node_url("n2"))
    try:
        info = await asyncio.to_thread(client.collection_cluster_info, "c")
        assert info.shard_count == 1 and info.peer_id == 2
        holders = [s.peer_id for s in info.remote_shards] + ([2] if info.local_shards else [])
        assert holders == [source]

        def update(operation: object) -> bool:
            return bool(client.cluster_collection_update("c", operation, timeout=30))  # type: ignore[arg-type]
        replicate = models.ReplicateShardOperation(replicate_shard=models.ReplicateShard(
            shard_id=0, from_peer_id=source, to_peer_id=first))
        assert await asyncio.to_thread(update, replicate) is True
        await wait_converged(api, "c", replicas_per_shard=2)
        move = models.MoveShardOperation(move_shard=models.MoveShard(
            shard_id=0, from_peer_id=first, to_peer_id=second, method=models.ShardTransferMethod.SNAPSHOT))
        assert await asyncio.to_thread(update, move) is True
        await wait_converged(api, "c", replicas_per_shard=2)
        assert sorted(replica_map(await api.state(), "c")[0]) == sorted([source, second])

        abort = models.AbortTransferOperation(abort_transfer=models.AbortShardTransfer(
            shard_id=0, from_peer_id=source, to_peer_id=first))
        with pytest.raises(UnexpectedResponse) as refused:
            await asyncio.to_thread(update, abort)
        assert refused.value.status_code == 404
        drop = models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=second))
        assert await asyncio.to_thread(update, drop) is True
        await wait_replica_state(api, "c", 0, second, None)
        info = await asyncio.to_thread(client.collection_cluster_info, "c")
        assert [(s.peer_id, s.state) for s in info.remote_shards] + [
            (2, s.state) for s in info.local_shards] == [(source, models.ReplicaState.ACTIVE)]
        assert (await asyncio.to_thread(client.count, "c")).count == 300
        await assert_converged(api, "c")
    finally:
        await asyncio.to_thread(client.close)
