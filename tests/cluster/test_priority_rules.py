"""Snapshot recovery priorities in a 3-node cluster (replication factor 2): which data wins, which states follow.

Reference: docs/cluster.md, "Priority rules of snapshot recovery". Each test takes a snapshot on peer P while
the shard holds data A, then writes B through the cluster (the other replica Q has B), and recovers the
snapshot on P:
- shard recovery (`location` = the snapshot's file name): `replica` marks P Dead and re-syncs it from Q
  (B wins); `snapshot` keeps P Active and marks Q Dead, re-synced from P (A wins); `no_sync` keeps both
  Active and different (P has A, Q has B);
- collection recovery (by http URL or upload): `replica` puts P in ManualRecovery and re-syncs it from Q;
  `snapshot` keeps P, removes the replicas beyond the replication factor and marks the rest Dead; `no_sync`
  makes P Active and leaves Q alone.
The decisions are read from the coordinator's `replica.state` events (with their rule names).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.events.recorder import Recorder
from tests.cluster.helpers import (
    ClusterApi,
    cluster_started,
    replica_map,
    rules_of,
    shard_digest,
    snapshot_download,
    snapshot_upload,
    wait_converged,
)
from tests.helpers import points_make


async def with_a_then_b(api: ClusterApi, name: str, kind: str) -> tuple[int, int, str, str, str]:
    """Collection `name` with data A snapshotted on P, then B written: (P, Q, snapshot, digest A, digest B)."""
    await api.collection_create("n1", name, shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", name, points_make(range(100), tag="a"))
    p, q = sorted(replica_map(await api.state(), name)[0])
    node_p = api.cluster.name_of(p)
    path = f"/collections/{name}/shards/0/snapshots" if kind == "shard" else f"/collections/{name}/snapshots"
    snapshot = (await api.ok(node_p, "POST", path))["name"]
    digest_a = await shard_digest(api, node_p, name)
    await api.upsert_ok("n2", name, points_make(range(50), tag="b", seed=2) + points_make(range(100, 150)))
    digest_b = (await wait_converged(api, name))[0]
    assert digest_a != digest_b
    return p, q, snapshot, digest_a, digest_b


def decided(recorder: Recorder, name: str) -> list[tuple[int, str | None, str]]:
    """The decisions about `name` after its creation."""
    return [r for r in rules_of(recorder.events, name) if not r[2].startswith("collection.create")]


async def digests_by_peer(api: ClusterApi, name: str) -> dict[int, str]:
    peers = replica_map(await api.state(), name)[0]
    return {p: await shard_digest(api, api.cluster.name_of(p), name) for p in sorted(peers)}


async def shard_recover(api: ClusterApi, name: str, priority: str) -> tuple[int, int, str, str]:
    p, q, snapshot, digest_a, digest_b = await with_a_then_b(api, name, "shard")
    await api.ok(api.cluster.name_of(p), "PUT", f"/collections/{name}/shards/0/snapshots/recover",
                 {"location": snapshot, "priority": priority})
    return p, q, digest_a, digest_b


async def collection_recover(api: ClusterApi, name: str, priority: str, upload: bool) -> tuple[int, int, str, str]:
    p, q, snapshot, digest_a, digest_b = await with_a_then_b(api, name, "collection")
    node_p = api.cluster.name_of(p)
    path = f"/collections/{name}/snapshots/{snapshot}"
    if upload:
        data = await snapshot_download(api, node_p, path)
        status, reply = await snapshot_upload(api, node_p, f"/collections/{name}/snapshots/upload", data, priority)
        assert status == 200, reply
    else:
        await api.ok(node_p, "PUT", f"/collections/{name}/snapshots/recover",
                     {"location": api.cluster.node_url(node_p) + path, "priority": priority})
    return p, q, digest_a, digest_b


async def test_priority_replica_existing_replicas_win(tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "run") as cluster, ClusterApi(cluster) as api, \
            Recorder(str(cluster.mqtt_url), cluster.cluster_name, tmp_path / "events.jsonl") as recorder:
        p, q, _, digest_b = await shard_recover(api, "s", "replica")
        assert set((await wait_converged(api, "s", replicas_per_shard=2)).values()) == {digest_b}
        await recorder.wait_event(lambda e: e.get("rule") == "transfer.finished" and e["collection"] == "s", 5.0)
        assert decided(recorder, "s") == [(p, "Dead", "priority.replica"), (p, "Recovery", "transfer.start"),
                                          (p, "Partial", "transfer.recovered"), (p, "Active", "transfer.finished")]

        p, q, _, digest_b = await collection_recover(api, "k", "replica", upload=False)
        assert set((await wait_converged(api, "k", replicas_per_shard=2)).values()) == {digest_b}
        await recorder.wait_event(lambda e: e.get("rule") == "transfer.finished" and e["collection"] == "k", 5.0)
        decisions = decided(recorder, "k")
        assert decisions == [(p, "ManualRecovery", "recovery.begin"), (p, "Recovery", "transfer.start"),
                                  (p, "Partial", "transfer.recovered"), (p, "Active", "transfer.finished")]


async def test_priority_snapshot_snapshot_data_wins(tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "run") as cluster, ClusterApi(cluster) as api, \
            Recorder(str(cluster.mqtt_url), cluster.cluster_name, tmp_path / "events.jsonl") as recorder:
        p, q, digest_a, _ = await shard_recover(api, "s", "snapshot")
        assert set((await wait_converged(api, "s", replicas_per_shard=2)).values()) == {digest_a}
        await recorder.wait_event(lambda e: e.get("rule") == "transfer.finished" and e["collection"] == "s", 5.0)
        assert decided(recorder, "s") == [(q, "Dead", "priority.snapshot.others_dead"),
                                          (q, "Recovery", "transfer.start"), (q, "Partial", "transfer.recovered"),
                                          (q, "Active", "transfer.finished")]

        p, q, digest_a, _ = await collection_recover_three_replicas(api)
        third = next(x for x in (1, 2, 3) if x not in (p, q))
        final = await wait_converged(api, "k", replicas_per_shard=2)
        assert set(final.values()) == {digest_a}
        decisions = rules_of(recorder.events, "k")
        removed, dead = sorted([q, third])
        assert (p, "Active", "priority.snapshot") in decisions
        assert (removed, None, "priority.snapshot.remove_extra") in decisions
        assert (dead, "Dead", "priority.snapshot.others_dead") in decisions
        assert sorted(replica_map(await api.state(), "k")[0]) == sorted([p, dead])


async def collection_recover_three_replicas(api: ClusterApi) -> tuple[int, int, str, str]:
    """Collection `k` gets A, a snapshot on P, B, a third replica, then the upload with priority snapshot."""
    await api.collection_create("n1", "k", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "k", points_make(range(100), tag="a"))
    p, q = sorted(replica_map(await api.state(), "k")[0])
    node_p = api.cluster.name_of(p)
    snapshot = (await api.ok(node_p, "POST", "/collections/k/snapshots"))["name"]
    digest_a = await shard_digest(api, node_p, "k")
    await api.upsert_ok("n2", "k", points_make(range(50), tag="b", seed=2))
    third = next(x for x in (1, 2, 3) if x not in (p, q))
    await api.ok("n1", "POST", "/collections/k/cluster", {"replicate_shard": {
        "shard_id": 0, "from_peer_id": q, "to_peer_id": third}})
    digest_b = (await wait_converged(api, "k", replicas_per_shard=3))[0]
    data = await snapshot_download(api, node_p, f"/collections/k/snapshots/{snapshot}")
    status, reply = await snapshot_upload(api, node_p, "/collections/k/snapshots/upload", data, "snapshot")
    assert status == 200, reply
    return p, q, digest_a, digest_b


@pytest.mark.parametrize("upload", [False, True], ids=["url", "upload"])
async def test_priority_no_sync_replicas_diverge(tmp_path: Path, upload: bool) -> None:
    async with cluster_started(tmp_path / "run") as cluster, ClusterApi(cluster) as api, \
            Recorder(str(cluster.mqtt_url), cluster.cluster_name, tmp_path / "events.jsonl") as recorder:
        p, q, digest_a, digest_b = await shard_recover(api, "s", "no_sync")
        assert replica_map(await api.state(), "s") == {0: {p: "Active", q: "Active"}}
        assert await digests_by_peer(api, "s") == {p: digest_a, q: digest_b}
        assert decided(recorder, "s") == [], "no_sync changes no state"

        p, q, digest_a, digest_b = await collection_recover(api, "k", "no_sync", upload=upload)
        assert replica_map(await api.state(), "k") == {0: {p: "Active", q: "Active"}}
        assert await digests_by_peer(api, "k") == {p: digest_a, q: digest_b}
        await recorder.wait_event(lambda e: e.get("rule") == "priority.no_sync" and e["collection"] == "k", 5.0)
        assert rules_of(recorder.events, "k")[-2:] == [(p, "ManualRecovery", "recovery.begin"),
                                                       (p, "Active", "priority.no_sync")]
