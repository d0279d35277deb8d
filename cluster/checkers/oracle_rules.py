"""The recovery rules of the priority oracle (docs/qdrant-semantics.md section 3), applied to the model's
replicas.

`recovery_apply(model, op, observed)` is called by `OracleModel` for each snapshot recovery, in effect order.
Each replica it touches gets a rule code (what the report and teaching mode show) and a sentence:

| rule | when |
|---|---|
| `no_other_active` | no other Active replica: the recovered one is Active whatever the priority |
| `no_sync` | the recovered replica is Active with the snapshot's data; the others are untouched |
| `snapshot` | the recovered replica is Active; the other Active ones go Dead |
| `snapshot_removed` | collection variant: other Active replicas beyond the replication factor are removed |
| `resynced` | a Dead replica re-synced by automatic recovery from an Active one, once its peer is up |
| `replica` | the existing replicas win: the recovered one is re-synced from an Active one |
| `replica_gotcha` | the same, when the existing replicas are empty and the snapshot is not (data is lost) |
| `unknown` | the recovery ended info, the snapshot is unknown, or re-sync sources disagree |
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from cluster.checkers.oracle_types import Points, ReplicaKey, ReplicaModel
from cluster.history import Op
from node.protocol import ReplicaState, SnapshotPriority

if TYPE_CHECKING:
    from cluster.checkers.oracle_model import OracleModel


def recovery_apply(model: OracleModel, op: Op, observed: dict[ReplicaKey, str | None]) -> None:
    value = op.value or {}
    collection = str(value.get("collection"))
    shard_number = int(model.collections.get(collection, {}).get("shard_number", 1))
    shards = [int(value["shard"])] if value.get("shard") is not None else list(range(shard_number))
    if op.completion == "fail":
        return  # definitely not applied: the replicas keep what they had
    if op.completion != "ok":
        for shard in shards:
            recovery_unknown(model, op, shard, f"recovery op {op.op_id} ended {op.completion or 'unfinished'}")
        return
    snapshot = model.snapshot_find(value)
    if snapshot is None:
        for shard in shards:
            recovery_unknown(model, op, shard, f"recovery op {op.op_id}: snapshot not created in this history")
        return
    if value.get("shard") is not None:
        content = snapshot.shards.get(shards[0])
        if content is None and len(snapshot.shards) == 1:
            content = next(iter(snapshot.shards.values()))
        if content is None:
            recovery_unknown(model, op, shards[0], f"recovery op {op.op_id}: snapshot lacks shard {shards[0]}")
            return
        replica_recover(model, op, shards[0], content, observed)
        return
    for shard, content in sorted(snapshot.shards.items()):
        replica_recover(model, op, shard, content, observed)


def recovery_unknown(model: OracleModel, op: Op, shard: int, reason: str) -> None:
    """Nothing certain about this shard's content; with a collection `snapshot` priority not even about
    which replicas remain; a replica the recovery may have created may or may not exist."""
    value = op.value or {}
    collection, peer = str(value.get("collection")), int(value.get("peer", 0))
    removal_possible = value.get("shard") is None and model.priority_of(op) == SnapshotPriority.SNAPSHOT
    if peer not in model.shard_replicas(collection, shard):
        model.replica_new((collection, shard, peer)).state = None
    for replica in model.shard_replicas(collection, shard).values():
        replica.known = False
        replica.rule, replica.explanation = "unknown", reason
        if removal_possible:
            replica.state = None


def replica_recover(model: OracleModel, op: Op, shard: int, content: tuple[Points, bool],
                    observed: dict[ReplicaKey, str | None]) -> None:
    """Restore `content` on the recovering peer's replica of `shard`, then apply the priority."""
    value = op.value or {}
    collection, peer = str(value.get("collection")), int(value.get("peer", 0))
    priority, variant = model.priority_of(op), ("shard" if value.get("shard") is not None else "collection")
    others = sorted(p for p in model.shard_replicas(collection, shard) if p != peer)
    active = [p for p in others
              if observed.get((collection, shard, p), ReplicaState.ACTIVE) == ReplicaState.ACTIVE]
    dead = [p for p in others if p not in active]
    target = model.replica_new((collection, shard, peer))
    target.points, target.known, target.state = copy.deepcopy(content[0]), content[1], ReplicaState.ACTIVE.value
    label = f"{variant} recovery (op {op.op_id}, priority {priority}) on peer {peer}"
    if not active:
        _rule(target, "no_other_active", f"{label}: no other Active replica, so Active whatever the priority")
        replicas_resync(model, collection, shard, dead, [peer])
    elif priority == SnapshotPriority.NO_SYNC:
        _rule(target, "no_sync", f"{label}: Active with the snapshot's data; peers {active} untouched")
        replicas_resync(model, collection, shard, dead, [peer, *active])
    elif priority == SnapshotPriority.SNAPSHOT:
        rf = int(model.collections.get(collection, {}).get("replication_factor", 1))
        removed = active[:max(0, len(active) - (rf - 1))] if variant == "collection" else []
        for other in removed:
            replica = model.shard_replicas(collection, shard)[other]
            replica.state = "Removed"
            _rule(replica, "snapshot_removed", f"{label}: removed, beyond replication factor {rf}")
        _rule(target, "snapshot", f"{label}: Active with the snapshot's data; other Active replicas Dead")
        replicas_resync(model, collection, shard, [p for p in others if p not in removed], [peer])
    elif priority == SnapshotPriority.REPLICA:
        was_empty = all(not model.shard_replicas(collection, shard)[p].points for p in active)
        replicas_resync(model, collection, shard, [peer, *dead], active)
        if was_empty and content[0]:
            _rule(target, "replica_gotcha", f"{label}: the existing replicas on peers {active} win and they "
                  "are empty, so the snapshot's data is lost (use priority snapshot for a new collection)")
        else:
            _rule(target, "replica", f"{label}: the existing replicas win; re-synced from peers {active}")
    else:
        recovery_unknown(model, op, shard, f"{label}: unknown priority")


def replicas_resync(model: OracleModel, collection: str, shard: int, peers: list[int],
                    sources: list[int]) -> None:
    """Automatic recovery of `peers` from any of `sources` (all Active): certain only if they agree."""
    replicas = model.shard_replicas(collection, shard)
    contents = [replicas[p] for p in sources]
    agree = all(r.known and r.points == contents[0].points for r in contents)
    for peer in peers:
        replica = replicas[peer]
        replica.points = copy.deepcopy(contents[0].points) if agree else {}
        replica.known, replica.state = agree, ReplicaState.ACTIVE.value
        because = f"re-synced from peer {sources[0]}" if len(sources) == 1 else f"re-synced from one of {sources}"
        _rule(replica, "resynced" if agree else "unknown",
              f"Dead, {because} by automatic recovery once its peer is up" + ("" if agree else " (their data differs)"))


def _rule(replica: ReplicaModel, rule: str, explanation: str) -> None:
    replica.rule, replica.explanation = rule, explanation
