"""Qdrant's cluster routes on a shardsim cluster, as tools written for Qdrant use them (issue 18 items 3-5).

Reference: docs/cluster.md section 3. `GET /cluster` maps the coordinator's state onto Qdrant's `raft_info`
(the state version as `commit`, the lowest healthy peer as `leader`); `GET /cluster/telemetry` answers in
Qdrant's distributed-telemetry shape; `POST /cluster/recover` pulls the state again; `DELETE
/cluster/peer/{id}` refuses a peer that holds a replica unless `force=true`, which drops its replicas; a
collection snapshot recovered on a peer creates the replicas the snapshot has data for; a payload index
shows in `payload_schema` with the points that have the field; a transfer to a peer that already holds a
replica re-syncs it; a user's transfer is not refused because of the peer that is down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cluster.launcher import Cluster
from node.retry import wait_until
from tests.cluster.helpers import (
    ClusterApi,
    cluster_started,
    replica_map,
    snapshot_download,
    snapshot_upload,
    transfer_operation,
    wait_converged,
)
from tests.helpers import points_make

STAGE_COMMENT = re.compile(r"^(proxifying|recovering|waiting consensus|syncing queued updates|finalizing) "
                           r"\(\d+\.\d\ds\)")


async def raft_infos(api: ClusterApi, nodes: list[str]) -> dict[str, dict[str, Any]]:
    return {node: (await api.ok(node, "GET", "/cluster"))["raft_info"] for node in nodes}


async def test_cluster_status_shows_a_leader_and_a_commit_every_node_reaches(cluster: Cluster,
                                                                              api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=2, replication_factor=2)
    version = int((await api.state())["version"])

    async def uniform() -> dict[str, dict[str, Any]] | None:
        infos = await raft_infos(api, ["n1", "n2", "n3"])
        seen = {(info["commit"], info["leader"]) for info in infos.values()}
        return infos if seen == {(version, 1)} else None  # (a health round missed under load: wait for the next)
    infos = await wait_until(uniform, 10.0, what="every node to apply the state version and show leader 1")
    assert {node: (info["leader"], info["role"], info["term"], info["is_voter"], info["pending_operations"])
            for node, info in infos.items()} == {"n1": (1, "Leader", 1, True, 0), "n2": (1, "Follower", 1, True, 0),
                                                 "n3": (1, "Follower", 1, True, 0)}
    status = await api.ok("n2", "GET", "/cluster")
    assert (status["status"], status["peer_id"], sorted(status["peers"])) == ("enabled", 2, ["1", "2", "3"])
    assert status["consensus_thread_status"]["consensus_thread_status"] == "working"
    assert await api.ok("n3", "POST", "/cluster/recover") is True

    await cluster.node_kill("n1")

    async def reelected() -> bool:
        infos = await raft_infos(api, ["n2", "n3"])
        return [info["leader"] for info in infos.values()] == [2, 2] and infos["n2"]["role"] == "Leader"
    await wait_until(reelected, 10.0, what="peer 2 to be shown as leader once peer 1 is down")
    await cluster.node_restart("n1")


async def test_telemetry_shows_peers_replicas_and_a_transfer_in_qdrants_words(cluster: Cluster,
                                                                               api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "c", points_make(range(300)))
    source, holder = sorted(replica_map(await api.state(), "c")[0])
    outsider = ({1, 2, 3} - {source, holder}).pop()
    await api.settings_set(transfer_phase_pause_s={"queue_installed": 3.0})
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, outsider))

    async def transfer_shown() -> dict[str, Any] | None:
        telemetry = await api.ok(cluster.name_of(outsider), "GET", "/cluster/telemetry?details_level=6")
        return telemetry if telemetry["collections"]["c"].get("shard_transfers") else None
    telemetry = await wait_until(transfer_shown, 10.0, what="the transfer in the cluster telemetry")
    shown = telemetry["collections"]["c"]
    transfer = shown["shard_transfers"][0]
    assert (transfer["shard_id"], transfer["from"], transfer["to"], transfer["sync"], transfer["method"]) == (
        0, source, outsider, True, "snapshot")
    assert STAGE_COMMENT.match(transfer["comment"]), transfer["comment"]
    replicas = {r["peer_id"]: r for r in shown["shards"][0]["replicas"]}
    assert {peer: r["state"] for peer, r in replicas.items()} == {source: "Active", holder: "Active",
                                                                 outsider: "Recovery"}
    assert replicas[outsider].get("num_points") == 0 and "num_points" not in replicas[source]
    peers = telemetry["cluster"]["peers"]
    assert telemetry["cluster"]["enabled"] is True and telemetry["cluster"]["number_of_peers"] == 3
    assert {peer: info["responsive"] for peer, info in peers.items()} == {"1": True, "2": True, "3": True}
    roles = [info["details"]["role"] for info in peers.values()]
    assert sorted(roles) == ["Follower", "Follower", "Leader"], roles  # which one: the first test's subject
    assert all(info["details"]["commit"] > 0 for info in peers.values())
    await api.settings_set(transfer_phase_pause_s={})
    await wait_converged(api, "c", replicas_per_shard=3)
    assert "shard_transfers" not in (await api.ok("n2", "GET", "/cluster/telemetry"))["collections"]["c"]


async def test_a_removed_peers_shards_come_back_from_its_collection_snapshot(cluster: Cluster,
                                                                             api: ClusterApi) -> None:
    """Qdrant's recovery of a lost peer: remove it by force (its replicas go, a shard with no other replica
    has none left), then recover its collection snapshot on another peer, which gets those shards back."""
    await api.collection_create("n1", "c", shard_number=3, replication_factor=1)
    points = points_make(range(600))
    await api.upsert_ok("n1", "c", points)
    layout = replica_map(await api.state(), "c")
    lost = {shard for shard, replicas in layout.items() if 3 in replicas}
    assert lost, layout
    snapshot = await api.ok("n3", "POST", "/collections/c/snapshots")
    data = await snapshot_download(api, "n3", f"/collections/c/snapshots/{snapshot['name']}")

    status, reply = await api.call("n1", "DELETE", "/cluster/peer/3")
    assert (status, reply["status"]["error"]) == (400, "Bad request: Cannot remove peer 3 as there are shards on it")
    await cluster.node_kill("n3")
    assert await api.ok("n1", "DELETE", "/cluster/peer/3?force=true") is True
    assert sorted((await api.ok("n2", "GET", "/cluster"))["peers"]) == ["1", "2"]
    layout = replica_map(await api.state(), "c")
    assert all(layout.get(shard, {}) == {} for shard in lost), layout

    status, reply = await snapshot_upload(api, "n1", "/collections/c/snapshots/upload", data, "snapshot")
    assert status == 200, reply
    layout = replica_map(await api.state(), "c")
    assert all(layout[shard] == {1: "Active"} for shard in lost), layout
    assert await api.count("n2", "c") == len(points)
    info = await api.cluster_info("n1", "c")
    assert {s["shard_id"] for s in info["local_shards"]} >= lost


async def test_a_payload_index_shows_in_payload_schema_with_its_points_on_every_node(cluster: Cluster,
                                                                                    api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=3, replication_factor=1)
    points = points_make(range(90))
    for point in points[:40]:
        point["payload"]["city"] = "Berlin" if point["id"] % 2 else ["London", "Moscow"]
    points[40]["payload"]["city"] = []  # an empty value is not indexed
    await api.upsert_ok("n1", "c", points)
    assert await api.ok("n2", "PUT", "/collections/c/index", {"field_name": "city", "field_schema": "keyword"}) == {
        "operation_id": 0, "status": "completed"}
    await api.ok("n1", "PUT", "/collections/c/index", {"field_name": "i", "field_schema": {"type": "integer",
                                                                                          "range": True}})
    for node in ("n1", "n2", "n3"):
        schema = (await api.ok(node, "GET", "/collections/c"))["payload_schema"]
        assert schema == {"city": {"data_type": "keyword", "points": 40},
                          "i": {"data_type": "integer", "params": {"type": "integer", "range": True},
                                "points": 90}}, node
    await api.ok("n3", "DELETE", "/collections/c/index/city")
    assert list((await api.ok("n1", "GET", "/collections/c"))["payload_schema"]) == ["i"]
    status, reply = await api.call("n1", "PUT", "/collections/c/index", {"field_name": "city", "field_schema": "x"})
    assert status == 400 and reply["status"]["error"].startswith("Format error in JSON body: field_schema")


async def test_a_transfer_to_a_peer_that_holds_a_replica_re_syncs_it(cluster: Cluster, api: ClusterApi) -> None:
    """Qdrant accepts a replicate (or move) to a peer that already holds the shard: it is streamed again."""
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "c", points_make(range(200)))
    source, holder = sorted(replica_map(await api.state(), "c")[0])
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, holder))
    await wait_converged(api, "c", replicas_per_shard=2)
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("move_shard", holder, source))
    digests = await wait_converged(api, "c", replicas_per_shard=1)
    assert replica_map(await api.state(), "c") == {0: {source: "Active"}} and digests
    assert await api.count("n3", "c") == 200


async def test_a_users_transfer_is_accepted_while_a_dead_replicas_peer_is_down(tmp_path: Path) -> None:
    """Qdrant's user-requests-above-limit case: with a Dead replica's peer down, nothing is transferred toward
    it, so replicating the shard from an Active replica to another peer is accepted and completes."""
    async with cluster_started(tmp_path / "run", nodes=4) as cluster, ClusterApi(cluster) as api:
        await api.collection_create("n1", "c", shard_number=1, replication_factor=3)
        holders = sorted(replica_map(await api.state(), "c")[0])
        spare = ({1, 2, 3, 4} - set(holders)).pop()
        victim, source = holders[-1], holders[0]
        await cluster.node_kill(cluster.name_of(victim))
        await api.upsert_ok(cluster.name_of(source), "c", points_make(range(500)))

        async def victim_dead() -> bool:
            return replica_map(await api.state(), "c")[0][victim] == "Dead"
        await wait_until(victim_dead, 20.0, what="the down peer's replica marked Dead")
        await api.ok(cluster.name_of(source), "POST", "/collections/c/cluster",
                     transfer_operation("replicate_shard", source, spare))

        async def spare_active() -> bool:
            return replica_map(await api.state(), "c")[0].get(spare) == "Active"
        await wait_until(spare_active, 30.0, what="the user's replicate to finish")
        assert all(victim not in (t["from"], t["to"]) for t in (await api.state())["transfers"])
        await cluster.node_restart(cluster.name_of(victim))
        await wait_converged(api, "c", replicas_per_shard=4, timeout_s=60.0)


async def test_qdrants_environment_reaches_every_process_the_launcher_starts(tmp_path: Path) -> None:
    """`Cluster(env=...)` adds variables to every process's environment, so a setting shardsim reads under
    Qdrant's name (here `QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY`) applies as it would to Qdrant."""
    env = {"QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY": "false"}
    async with cluster_started(tmp_path / "run", nodes=2, env=env) as cluster, ClusterApi(cluster) as api:
        await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
        status, reply = await api.call("n2", "PUT", "/collections/c/snapshots/recover",
                                       {"location": f"{cluster.node_url('n1')}/collections/c/snapshots/x.snapshot"})
        assert (status, reply["status"]["error"]) == (
            403, "Forbidden: Snapshot recovery from remote URLs is disabled in the configuration")
