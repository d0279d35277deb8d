"""Named and sparse vectors through a shard move and a snapshot recovery in a 3-node cluster.

The collection has two named dense vectors and a sparse one; points are written and partly updated (payload
at a nested key, vectors updated and deleted, in a batch) through a node that holds no replica, so every
update is forwarded. A shard move runs while more partial updates arrive (queued at the source and replayed
to the target); a shard snapshot is then recovered with priority `snapshot`, which re-syncs the other
replica from it. After each step every replica has the same digest, and that digest is the one computed
(by `node.protocol.shard_digest`, as checkers do) from the points read back as JSON: every named and sparse
vector is counted and survives.
"""

from __future__ import annotations

from typing import Any

from node.protocol import shard_digest
from node.retry import wait_until
from tests.cluster.helpers import (
    ClusterApi,
    replica_map,
    snapshot_download,
    snapshot_upload,
    wait_converged,
)

CONFIG = {"vectors": {"a": {"size": 4, "distance": "Dot"}, "b": {"size": 2, "distance": "Euclid"}},
          "sparse_vectors": {"s": {}}, "shard_number": 1, "replication_factor": 2}


def point(i: int) -> dict[str, Any]:
    vectors: dict[str, Any] = {"a": [i / 8, 0.15, 1.0, -0.5], "s": {"indices": [i % 97, 1000 + i], "values": [0.25, i / 4]}}
    if i % 2:
        vectors["b"] = [float(i), 0.5]
    return {"id": i, "vector": vectors, "payload": {"i": i, "meta": {"tag": "x"}}}


async def points_read(api: ClusterApi, node: str) -> list[dict[str, Any]]:
    page = await api.ok(node, "POST", "/collections/v/points/scroll", {"limit": 10_000, "with_payload": True,
                                                                      "with_vector": True})
    assert page["next_page_offset"] is None
    return list(page["points"])


def digest_of(points: list[dict[str, Any]]) -> str:
    return shard_digest((p["id"], p["vector"], p["payload"]) for p in points)


async def test_named_and_sparse_vectors_survive_a_move_and_a_snapshot_recovery(api: ClusterApi) -> None:
    await api.ok("n1", "PUT", "/collections/v", CONFIG)
    holders = sorted(replica_map(await api.state(), "v")[0])
    outsider = next(p for p in (1, 2, 3) if p not in holders)
    via = api.cluster.name_of(outsider)  # holds no replica: every update is forwarded
    await api.ok(via, "PUT", "/collections/v/points?wait=true", {"points": [point(i) for i in range(300)]})
    await api.ok(via, "POST", "/collections/v/points/batch?wait=true", {"operations": [
        {"set_payload": {"payload": {"seen": True}, "key": "meta", "filter": {"must": [
            {"key": "i", "range": {"lt": 50}}]}}},
        {"update_vectors": {"points": [{"id": i, "vector": {"b": [0.0, float(i)]}} for i in range(0, 40, 2)]}},
        {"delete_vectors": {"points": list(range(100, 110)), "vector": ["s"]}},
        {"delete_payload": {"points": [7], "keys": ["meta.tag"]}}]})
    first = await wait_converged(api, "v")
    read = await points_read(api, "n1")
    assert first[0] == digest_of(read)
    by_id = {p["id"]: p for p in read}
    assert by_id[2]["vector"]["b"] == [0.0, 2.0] and by_id[3]["vector"]["b"] == [3.0, 0.5]
    assert "s" not in by_id[105]["vector"] and by_id[10]["payload"]["meta"] == {"tag": "x", "seen": True}
    assert by_id[1]["vector"]["s"] == {"indices": [1, 1001], "values": [0.25, 0.25]}

    await api.settings_set(transfer_phase_pause_s={"queue_installed": 2.0})
    source = holders[0]
    await api.ok("n1", "POST", "/collections/v/cluster", {"move_shard": {
        "shard_id": 0, "from_peer_id": source, "to_peer_id": outsider}})

    async def target_recovering() -> bool:
        return replica_map(await api.state(), "v")[0].get(outsider) == "Recovery"
    await wait_until(target_recovering, 20.0, what="the move's target is in Recovery")
    await api.ok("n1", "PUT", "/collections/v/points/vectors?wait=true", {"points": [
        {"id": 300 - i, "vector": {"s": {"indices": [5, 6], "values": [1.5, 2.5]}}} for i in range(1, 21)]})
    await api.ok("n1", "POST", "/collections/v/points/payload/clear?wait=true", {"points": [299]})
    await api.settings_set(transfer_phase_pause_s={})
    moved = await wait_converged(api, "v")
    assert sorted(replica_map(await api.state(), "v")[0]) == sorted({*holders, outsider} - {source})
    read = await points_read(api, api.cluster.name_of(outsider))
    assert moved[0] == digest_of(read) != first[0]
    assert {p["id"]: p for p in read}[290]["vector"]["s"] == {"indices": [5, 6], "values": [1.5, 2.5]}

    keeper = api.cluster.name_of(outsider)
    snapshot = (await api.ok(keeper, "POST", "/collections/v/shards/0/snapshots"))["name"]
    data = await snapshot_download(api, keeper, f"/collections/v/shards/0/snapshots/{snapshot}")
    await api.ok("n2", "PUT", "/collections/v/points/vectors?wait=true", {"points": [
        {"id": i, "vector": {"a": [0.0, 0.0, 0.0, 0.0]}} for i in range(300)]})
    changed = await wait_converged(api, "v")
    assert changed[0] != moved[0]
    status, reply = await snapshot_upload(api, keeper, "/collections/v/shards/0/snapshots/upload", data, "snapshot")
    assert status == 200, reply
    recovered = await wait_converged(api, "v", replicas_per_shard=2)
    assert recovered[0] == moved[0], "the snapshot's named and sparse vectors are back on every replica"
    assert digest_of(await points_read(api, "n3")) == moved[0]
