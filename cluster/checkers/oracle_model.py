"""The priority oracle's model: what each replica should hold and be after snapshot recoveries.

A small, pure model of the snapshot priority rules (docs/qdrant-semantics.md section 3),
used by the `priority_oracle` and `snapshot_integrity` checkers and by the report to say *why* a replica
ended as it did. `oracle_predict(meta, ops)` replays the history's client operations over a model cluster:

- every shard of every collection in meta starts on its placement (from `replica.state` events recorded
  before the first recovery, or the given `placement`), empty and Active;
- an acknowledged write lands on every replica of its shard at its completion; replicas made Dead by faults
  are assumed to be re-synced after healing, so they end with the same writes (a Dead replica is re-synced
  once its peer is up and healthy, never toward a peer that is down: docs/cluster.md section 4);
- a snapshot holds what the creating peer's replicas held when the snapshot was invoked (writes acknowledged
  before it); a collection snapshot holds only the shards local to that peer;
- a successful recovery restores the snapshot's data on the peer (a collection recovery creates the replicas
  the peer lacks of the shards the snapshot holds, as Qdrant does), then applies the priority. "Other
  Active replicas" are the other replicas of the shard that the bus last reported Active before the
  recovery was invoked (no report: Active). With none, the replica is Active whatever the priority and every
  Dead replica is re-synced from it. Otherwise `no_sync` leaves the others untouched (they may diverge);
  `snapshot` makes the others Dead and re-syncs them from the recovered one, and the collection variant
  first removes the first `max(0, n_others - (replication_factor - 1))` of them (ascending peer id);
  `replica` re-syncs the recovered replica from another Active one, so the existing data wins (the
  documented gotcha: on a new, empty collection the result is empty).

What it cannot know it marks unknown rather than guessing: a write or recovery that ended `info`, a write
concurrent with a snapshot or a recovery of its collection, a re-sync whose possible sources disagree. Such a
prediction has `digest` None (and `state` None when even the replica's existence is unsure). Scenarios that
rely on the oracle keep writes out of the snapshot and recovery windows.
"""

from __future__ import annotations

import copy
from typing import Any

from cluster.checkers.oracle_rules import recovery_apply
from cluster.checkers.oracle_types import Points, Prediction, ReplicaKey, ReplicaModel, SnapshotModel
from cluster.history import Op, history_ops, priority_effective
from node.protocol import PointId, point_id_normalize, shard_digest, shard_for_point

REMOVED_STATES = (None, "", "Removed")


def placement_from_history(records: list[dict[str, Any]]) -> dict[tuple[str, int], list[int]]:
    """Replicas seen in `replica.state` events before the first recovery; else the final observation."""
    first_recover_s = min((float(r["time"]) for r in records
                           if r.get("type") == "invoke" and r.get("f") == "snapshot_recover"), default=None)
    placement: dict[tuple[str, int], set[int]] = {}
    for record in records:
        event = record.get("event") or {}
        if record.get("type") != "event" or event.get("kind") != "replica.state":
            continue
        if first_recover_s is not None and float(record["time"]) >= first_recover_s:
            break
        key = (str(event["collection"]), int(event["shard"]))
        peers = placement.setdefault(key, set())
        (peers.discard if event.get("to") in REMOVED_STATES else peers.add)(int(event["peer"]))
    if not placement:
        finals = [r for r in records if r.get("type") == "final" and r.get("f") == "replicas"]
        for collection, shards in (finals[-1]["value"] if finals else {}).items():
            for shard, peers in shards.items():
                placement[(collection, int(shard))] = {int(p) for p in peers}
    return {key: sorted(peers) for key, peers in placement.items()}


def states_observed(records: list[dict[str, Any]], time_before_s: float) -> dict[ReplicaKey, str | None]:
    """The last state the bus reported for each replica strictly before `time_before_s`."""
    states: dict[ReplicaKey, str | None] = {}
    for record in records:
        event = record.get("event") or {}
        if record.get("type") == "event" and event.get("kind") == "replica.state":
            if float(record["time"]) >= time_before_s:
                break
            states[(str(event["collection"]), int(event["shard"]), int(event["peer"]))] = event.get("to")
    return states


def oracle_predict(meta: dict[str, Any], ops: list[dict[str, Any]],
                   placement: dict[tuple[str, int], list[int]] | None = None) -> dict[ReplicaKey, Prediction]:
    """Predict every replica's end from the history records `ops` (client operations and bus events).

    Raises ValueError when the history says nothing about where the replicas are.
    """
    placement = placement_from_history(ops) if placement is None else placement
    if not placement:
        raise ValueError("no replica placement: no replica.state events and no final replicas observation")
    model = OracleModel(meta, placement)
    for op in _ops_effect_order(history_ops(ops)):
        model.op_apply(op, ops)
    return model.predictions()


def _ops_effect_order(ops: list[Op]) -> list[Op]:
    """Ops sorted by when their effect lands: snapshots at invocation, acknowledged writes and recoveries at
    completion, unknown outcomes at invocation (from then on the content is uncertain)."""
    def effect_time_s(op: Op) -> float:
        landed = op.completion == "ok" and op.f != "snapshot_create"
        return op.time_complete_s if landed else op.time_invoke_s
    return sorted((op for op in ops if op.may_have_happened), key=lambda op: (effect_time_s(op), op.op_id))


class OracleModel:
    """The model cluster: replicas keyed (collection, shard, peer), snapshots in creation order."""

    def __init__(self, meta: dict[str, Any], placement: dict[tuple[str, int], list[int]]) -> None:
        self.meta = meta
        self.collections: dict[str, dict[str, Any]] = dict(meta.get("collections") or {})
        self.replicas: dict[ReplicaKey, ReplicaModel] = {
            (c, s, p): ReplicaModel() for (c, s), peers in placement.items() for p in peers}
        self.snapshots: list[SnapshotModel] = []
        self.writes: list[Op] = []
        self.snapshots_ops: list[Op] = []
        self.recovers: list[Op] = []

    def op_apply(self, op: Op, records: list[dict[str, Any]]) -> None:
        collection = (op.value or {}).get("collection")
        if op.f in ("upsert", "delete"):
            self.write_apply(op)
            for other in self.snapshots_ops + self.recovers:
                if (other.value or {}).get("collection") == collection and _overlap(op, other):
                    self.concurrent_mark(other, op)
            self.writes.append(op)
        elif op.f == "snapshot_create" and op.completion == "ok":
            self.snapshot_take(op)
            self.snapshots_ops.append(op)
        elif op.f == "snapshot_recover":
            recovery_apply(self, op, states_observed(records, op.time_invoke_s))
            for write in self.writes:
                if (write.value or {}).get("collection") == collection and _overlap(op, write):
                    self.concurrent_mark(op, write)
            self.recovers.append(op)

    def replica_new(self, key: ReplicaKey) -> ReplicaModel:
        """The replica at `key`, created empty if the peer did not host that shard (or it was removed)."""
        replica = self.replicas.get(key)
        if replica is None or replica.state == "Removed":
            replica = self.replicas[key] = ReplicaModel()
        return replica

    def shard_of(self, collection: str, point_id: PointId) -> int:
        return shard_for_point(point_id, int(self.collections.get(collection, {}).get("shard_number", 1)))

    def shard_replicas(self, collection: str, shard: int) -> dict[int, ReplicaModel]:
        return {p: r for (c, s, p), r in sorted(self.replicas.items())
                if c == collection and s == shard and r.state != "Removed"}

    def write_shards(self, op: Op) -> set[int]:
        value = op.value or {}
        ids = [p["id"] for p in value.get("points", [])] if op.f == "upsert" else value.get("ids", [])
        return {self.shard_of(str(value.get("collection")), point_id_normalize(i)) for i in ids}

    def write_apply(self, op: Op) -> None:
        collection = str((op.value or {}).get("collection"))
        if op.completion != "ok":
            for shard in self.write_shards(op):
                self.shard_unknown(collection, shard, f"write op {op.op_id} ended {op.completion}")
            return
        for point in (op.value or {}).get("points", []) if op.f == "upsert" else []:
            point_id = point_id_normalize(point["id"])
            for replica in self.shard_replicas(collection, self.shard_of(collection, point_id)).values():
                replica.points[point_id] = (list(point.get("vector") or []), dict(point.get("payload") or {}))
        for raw_id in (op.value or {}).get("ids", []) if op.f == "delete" else []:
            point_id = point_id_normalize(raw_id)
            for replica in self.shard_replicas(collection, self.shard_of(collection, point_id)).values():
                replica.points.pop(point_id, None)

    def shard_unknown(self, collection: str, shard: int, reason: str) -> None:
        for replica in self.shard_replicas(collection, shard).values():
            replica.known = False
            replica.rule, replica.explanation = "unknown", reason

    def concurrent_mark(self, op: Op, write: Op) -> None:
        """A write overlapped a snapshot or a recovery of its collection: its shards become uncertain."""
        shards = self.write_shards(write)
        if op.f == "snapshot_create":
            for snapshot in self.snapshots:
                if snapshot.op_id == op.op_id:
                    for shard in shards & set(snapshot.shards):
                        snapshot.shards[shard] = (snapshot.shards[shard][0], False)
            return
        for shard in shards:
            self.shard_unknown(str((op.value or {}).get("collection")), shard,
                               f"write op {write.op_id} concurrent with recovery op {op.op_id}")

    def snapshot_take(self, op: Op) -> None:
        value, result = op.value or {}, op.result or {}
        collection, peer = str(value.get("collection")), int(value.get("peer", 0))
        shards: dict[int, tuple[Points, bool]] = {}
        for (c, s, p), replica in self.replicas.items():
            if c == collection and p == peer and replica.state != "Removed":
                if value.get("shard") is None or int(value["shard"]) == s:
                    shards[s] = (copy.deepcopy(replica.points), replica.known)
        self.snapshots.append(SnapshotModel(op.op_id, collection, peer, result.get("name"),
                                            result.get("checksum"), shards))

    def snapshot_find(self, value: dict[str, Any]) -> SnapshotModel | None:
        """The snapshot a recover op restores: by checksum, else by name (the recovering peer's first)."""
        by_checksum = [s for s in self.snapshots if value.get("checksum") and s.checksum == value["checksum"]]
        by_name = [s for s in self.snapshots if value.get("name") and s.name == value["name"]]
        found = by_checksum or sorted(by_name, key=lambda s: s.peer != value.get("peer"))
        return found[-1] if by_checksum else (found[0] if found else None)

    def predictions(self) -> dict[ReplicaKey, Prediction]:
        found = {}
        for key, replica in sorted(self.replicas.items()):
            digest = None
            if replica.known and replica.state != "Removed":
                digest = shard_digest((i, v, p) for i, (v, p) in replica.points.items())
            found[key] = Prediction(digest, replica.state, replica.rule, replica.explanation)
        return found

    def priority_of(self, op: Op) -> str:
        return priority_effective((op.value or {}).get("priority"), self.meta)


def _overlap(a: Op, b: Op) -> bool:
    return a.time_invoke_s <= b.time_complete_s and b.time_invoke_s <= a.time_complete_s
