"""A 3-node cluster serves one collection from every node, and writes through any node reach every replica.

Real processes through `Cluster`, real HTTP. Reference: docs/cluster.md, "Replica states" (the states, and
routing: writes go to every replica that takes updates, reads to Active ones) and "The cluster API".
"""

from __future__ import annotations

from cluster.launcher import Cluster
from cluster.pytest_plugin import wait_replicas_active
from tests.cluster.helpers import ClusterApi, assert_converged, replica_map
from tests.helpers import points_make

NODES = ["n1", "n2", "n3"]


async def test_collection_created_on_one_node_is_served_by_all(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=3, replication_factor=2)
    await wait_replicas_active(cluster, "c", replicas_per_shard=2)
    replicas = replica_map(await api.state(), "c")
    assert sorted(replicas) == [0, 1, 2]
    await api.upsert_ok("n2", "c", points_make(range(60)))
    for node in NODES:
        description = await api.ok(node, "GET", "/collections/c")
        assert description["config"]["params"]["shard_number"] == 3
        assert await api.count(node, "c") == 60
        point = await api.ok(node, "GET", "/collections/c/points/7")
        assert point["id"] == 7 and point["payload"] == {"i": 7, "tag": "a"}
        assert await api.retrieve_ids(node, "c", list(range(60))) == set(range(60))
        status = await api.ok(node, "GET", "/cluster")
        assert status["status"] == "enabled" and set(status["peers"]) == {"1", "2", "3"}


async def test_writes_through_any_node_reach_every_replica(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=3, replication_factor=2)
    await wait_replicas_active(cluster, "c", replicas_per_shard=2)
    acked: list[int] = []
    for round_index in range(6):
        node = NODES[round_index % 3]
        ids = list(range(round_index * 50, round_index * 50 + 50))
        await api.upsert_ok(node, "c", points_make(ids, seed=round_index))
        acked += ids
    await api.ok("n3", "POST", "/collections/c/points/delete?wait=true", {"points": acked[:10]})
    digests = await assert_converged(api, "c")
    assert len(set(digests.values())) == 3, "three shards with different content"
    per_node = {node: await api.ok(node, "GET", "/internal/digests") for node in NODES}
    for shard, peers in replica_map(await api.state(), "c").items():
        counts = {per_node[cluster.name_of(p)]["c"][str(shard)]["points_count"] for p in peers}
        assert len(counts) == 1
    for node in NODES:
        assert await api.retrieve_ids(node, "c", acked) == set(acked[10:])
        assert await api.count(node, "c") == len(acked) - 10
