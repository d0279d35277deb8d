"""Snapshot recovery in a cluster: the replica-versus-snapshot priority rules (docs/qdrant-semantics.md
section 3).

Pure functions over `ClusterState`. A recovery on peer P has restored P's local data; these functions set
the states that follow:
- no other Active replica: P becomes Active whatever the priority;
- `no_sync`: P Active, the others untouched (they may diverge, all Active);
- `snapshot`: P Active; shard recovery marks every other Active replica Dead, collection recovery removes
  the first `max(0, n_others - (replication_factor - 1))` of them and marks the rest Dead; automatic
  recovery then re-syncs them from P;
(as in Qdrant, a replica marked Dead or removed first aborts the transfers of its shard it takes part in);
- `replica`: the existing replicas win. Shard recovery marks P Dead (automatic recovery re-syncs it);
  collection recovery keeps P in ManualRecovery and asks for a sync transfer from the first other Active
  replica to P (returned to the caller, which starts it).
"""

from __future__ import annotations

from cluster.coordinator.operations import replica_dead, transfer_abort, transfer_start
from cluster.coordinator.state import ClusterState
from node.plant import planted
from node.protocol import ReplicaState, SnapshotPriority


def others_active(state: ClusterState, name: str, shard: int, peer: int) -> list[int]:
    return sorted(p for p, st in state.replicas(name, shard).items() if p != peer and st == ReplicaState.ACTIVE)


def recovery_begin(state: ClusterState, name: str, shards: list[int], peer: int,
                   added: list[int] | None = None) -> dict[int, str | None]:
    """Collection recovery starts: P's replicas go to ManualRecovery, and so do new replicas of the shards in
    `added` (shards the snapshot holds data for that P has no replica of: as in Qdrant, recovering creates
    them); returns the previous states (None: the replica is new)."""
    previous: dict[int, str | None] = {}
    for shard in sorted(set(shards) | set(added or [])):
        current = state.replica_state(name, shard, peer)
        if current is None and shard not in (added or []):
            continue
        previous[shard] = current
        why = ("its replica is in ManualRecovery meanwhile" if current is not None else
               "the snapshot holds data for it, so a replica is created there, in ManualRecovery meanwhile")
        state.replica_set(name, shard, peer, ReplicaState.MANUAL_RECOVERY, "recovery.begin",
                          f"{state.peer_name(peer)} is recovering shard {shard} from a collection snapshot: {why}")
    return previous


def recovery_restore(state: ClusterState, name: str, previous: dict[int, str | None], peer: int, why: str) -> None:
    """Replicas still in ManualRecovery go back to their previous state; the ones the recovery created go."""
    for shard, before in previous.items():
        if state.replica_state(name, shard, peer) == ReplicaState.MANUAL_RECOVERY:
            went = f"goes back to {before}" if before is not None else "is removed again"
            state.replica_set(name, shard, peer, before, "recovery.restore_state",
                              f"{state.peer_name(peer)}'s replica of shard {shard} {went}: {why}")


def shard_recovered(state: ClusterState, name: str, shard: int, peer: int, priority: str) -> None:
    """Apply the shard-recovery rules after P restored a shard snapshot."""
    who = state.peer_name(peer)
    others = others_active(state, name, shard, peer)
    if not others:
        state.replica_set(name, shard, peer, ReplicaState.ACTIVE, "priority.no_other_active",
                          f"priority={priority}: no other Active replica of shard {shard}, so {who}'s "
                          f"recovered replica becomes Active whatever the priority")
    elif priority == SnapshotPriority.NO_SYNC:
        state.replica_set(name, shard, peer, ReplicaState.ACTIVE, "priority.no_sync",
                          f"priority=no_sync: {who}'s recovered replica of shard {shard} is Active and the "
                          f"other replicas are left untouched (they may now differ)")
    elif priority == SnapshotPriority.SNAPSHOT:
        state.replica_set(name, shard, peer, ReplicaState.ACTIVE, "priority.snapshot",
                          f"priority=snapshot: {who}'s recovered replica of shard {shard} is Active")
        for other in [] if planted("snapshot_priority_keeps_others") else others:  # plant
            replica_dead(state, name, shard, other, "priority.snapshot.others_dead",
                         f"priority=snapshot: other Active replicas of shard {shard} marked Dead, they will be "
                         f"re-synced from {who}")
    else:
        replica_dead(state, name, shard, peer, "priority.replica",
                     f"priority=replica: the existing replicas of shard {shard} win; {who}'s recovered replica is "
                     f"marked Dead and will be re-synced from an Active replica")


def collection_shard_recovered(state: ClusterState, name: str, shard: int, peer: int,
                               priority: str) -> dict[str, object] | None:
    """Apply the collection-recovery rules to one shard; may return a transfer to start (`replica`)."""
    who = state.peer_name(peer)
    others = others_active(state, name, shard, peer)
    collection = state.collection(name)
    assert collection is not None
    if not others or priority == SnapshotPriority.NO_SYNC:
        shard_recovered(state, name, shard, peer, priority)
        return None
    if priority == SnapshotPriority.SNAPSHOT:
        replication_factor = int(collection["config"].get("replication_factor", 1))
        remove_count = max(0, len(others) - (replication_factor - 1))
        state.replica_set(name, shard, peer, ReplicaState.ACTIVE, "priority.snapshot",
                          f"priority=snapshot: {who}'s recovered replica of shard {shard} is Active")
        for other in others[:remove_count]:
            for transfer in state.transfers_of(name, shard):
                if other in (transfer["from"], transfer["to"]):
                    transfer_abort(state, transfer, f"{state.peer_name(other)}'s replica of shard {shard} removed")
            state.replica_set(name, shard, other, None, "priority.snapshot.remove_extra",
                              f"priority=snapshot: {state.peer_name(other)}'s replica of shard {shard} is "
                              f"removed to keep the replication factor {replication_factor}")
        for other in others[remove_count:]:
            replica_dead(state, name, shard, other, "priority.snapshot.others_dead",
                         f"priority=snapshot: other Active replicas of shard {shard} marked Dead, they will be "
                         f"re-synced from {who}")
        return None
    source = others[0]
    return transfer_start(state, name, {"shard_id": shard, "from_peer_id": source, "to_peer_id": peer},
                          sync=True, reason=f"priority=replica: the existing replicas win, {who} is re-synced from "
                                 f"{state.peer_name(source)}")


def recovery_finish(state: ClusterState, name: str, peer: int, shards: list[int], previous: dict[int, str | None],
                    priority: str, kind: str) -> list[dict[str, object]]:
    """P restored `shards`: the replicas the snapshot had no data for go back to their previous state, the
    others follow the shard or collection rules; returns the transfers to start."""
    skipped = {shard: before for shard, before in previous.items() if shard not in shards}
    recovery_restore(state, name, skipped, peer, "the snapshot has no data for this shard")
    transfers = []
    for shard in shards:
        if kind == "collection":
            transfer = collection_shard_recovered(state, name, shard, peer, priority)
            if transfer is not None:
                transfers.append(transfer)
        else:
            shard_recovered(state, name, shard, peer, priority)
    return transfers
