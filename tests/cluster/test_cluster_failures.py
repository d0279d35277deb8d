"""Node and coordinator failures: honest write acknowledgements, Dead replicas, restarts, automatic recovery.

Reference: docs/cluster.md, "Replica states" (a failed forwarded update marks the replica Dead), "A snapshot
transfer, step by step" (Dead replicas are re-synced automatically) and "The coordinator" (it keeps its state
in SQLite); docs/node.md, "Durability model" (an update acknowledged with wait=true survives kill -9).
"""

from __future__ import annotations

from cluster.launcher import Cluster
from cluster.pytest_plugin import wait_replicas_active
from node.protocol import cluster_info_replicas
from node.retry import wait_until
from tests.cluster.helpers import (
    ClusterApi,
    Writer,
    assert_converged,
    digests_of,
    replica_map,
    wait_converged,
)
from tests.helpers import points_make


async def test_write_consistency_two_with_a_killed_replica_answers_honestly(
        cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=3, replication_factor=2, write_consistency_factor=2)
    await wait_replicas_active(cluster, "c", replicas_per_shard=2)
    replicas = replica_map(await api.state(), "c")
    await api.upsert_ok("n1", "c", points_make(range(30)))
    await cluster.node_kill("n3")
    acked: list[int] = []
    refused: list[int] = []
    errors: set[int] = set()
    for index in range(40):
        status, reply = await api.upsert("n1" if index % 2 else "n2", "c", points_make([1000 + index]))
        if status == 200:
            acked.append(1000 + index)
        else:
            refused.append(1000 + index)
            errors.add(status)
            assert "error" in reply["status"], reply
    assert acked and refused, "shards without n3 accept writes, shards with n3 refuse them"
    assert errors <= {500, 503}, errors
    states = cluster_info_replicas(await api.cluster_info("n1", "c"))
    on_n3 = [shard for shard, peers in replicas.items() if 3 in peers]
    assert {states[shard][3] for shard in on_n3} == {"Dead"}, states
    assert await api.retrieve_ids("n1", "c", acked) == set(acked), "every acknowledged write is readable"


async def test_killed_node_restarts_with_its_points_and_dead_replica_recovers(
        cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=2, replication_factor=2)
    await wait_replicas_active(cluster, "c", replicas_per_shard=2)
    replicas = replica_map(await api.state(), "c")
    await api.upsert_ok("n1", "c", points_make(range(500)))
    before = (await digests_of(api, ["n2"]))["n2"]["c"]
    await cluster.node_kill("n2")
    await cluster.node_restart("n2")
    after = (await digests_of(api, ["n2"]))["n2"]["c"]
    assert {s: i["digest"] for s, i in after.items()} == {s: i["digest"] for s, i in before.items()}
    assert await wait_converged(api, "c", replicas_per_shard=2)

    await cluster.node_kill("n2")
    async with Writer(api, "c", ["n1", "n3"]) as writer:
        on_n2 = [shard for shard, peers in replicas.items() if 2 in peers]

        async def n2_dead() -> bool:
            current = replica_map(await api.state(), "c")
            return all(current[shard][2] == "Dead" for shard in on_n2)
        await wait_until(n2_dead, 20.0, what="n2's replicas marked Dead")
        await writer.wait_acked(len(writer.acked) + 200)
        await cluster.node_restart("n2")
        await writer.wait_acked(len(writer.acked) + 100)
    assert not writer.refused, "with write_consistency_factor 1 the live replica takes every write"
    digests = await wait_converged(api, "c", replicas_per_shard=2, timeout_s=40.0)
    n2_now = (await digests_of(api, ["n2"]))["n2"]["c"]
    assert {int(s): i["digest"] for s, i in n2_now.items()} == {s: digests[s] for s in on_n2}
    acked = list(range(500)) + writer.acked
    for node in ("n1", "n2", "n3"):
        assert await api.retrieve_ids(node, "c", acked) == set(acked)


async def test_coordinator_restart_keeps_the_state_and_the_cluster_keeps_working(
        cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n2", "c", shard_number=3, replication_factor=2)
    await wait_replicas_active(cluster, "c", replicas_per_shard=2)
    await api.upsert_ok("n1", "c", points_make(range(100)))
    before = await api.state()
    await cluster.coordinator_restart()
    after = await api.state()
    assert after["version"] >= before["version"]
    assert replica_map(after, "c") == replica_map(before, "c")
    assert after["peers"] == before["peers"]
    await api.upsert_ok("n3", "c", points_make(range(100, 200)))
    shard, peers = next(iter(replica_map(after, "c").items()))
    source = min(peers)
    target = next(p for p in (1, 2, 3) if p not in peers)
    status, reply = await api.cluster_operation("n1", "c", {"replicate_shard": {
        "shard_id": shard, "from_peer_id": source, "to_peer_id": target}})
    assert status == 200, reply
    await wait_converged(api, "c")
    assert len(replica_map(await api.state(), "c")[shard]) == 3
    await assert_converged(api, "c")
    for node in ("n1", "n2", "n3"):
        assert await api.count(node, "c") == 200
