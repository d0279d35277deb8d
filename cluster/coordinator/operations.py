"""Cluster operations as pure functions over `ClusterState`, with Qdrant's validation and errors.

Each function checks its input against the state (docs/qdrant-semantics.md section 5 for transfers and
drop_replica), raises `OperationError` with Qdrant's kind, status and words when it must refuse, and otherwise
changes the state through `replica_set`, so that every replica state change is a decision with a rule and a
sentence. The engine (`Coordinator.change` in cluster/coordinator/engine.py) commits, persists and pushes
the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.coordinator.placement import placement
from cluster.coordinator.state import ClusterState
from node.plant import planted
from node.protocol import UPDATABLE_STATES, ReplicaState, TransferKey


@dataclass
class OperationError(Exception):
    kind: str  # a node error kind name (node/errors.py ERROR_KINDS)
    status: int
    message: str

    def text(self) -> str:
        prefix = {"NotFound": "Not found: ", "BadRequest": "Bad request: ", "BadInput": "Wrong input: ",
                  "AlreadyExists": "Wrong input: ", "ServiceError": "Service internal error: ", "FormatError": ""}
        return prefix.get(self.kind, "") + self.message


def bad_request(message: str) -> OperationError:
    return OperationError("BadRequest", 400, message)


def collection_get(state: ClusterState, name: str) -> dict[str, Any]:
    collection = state.collection(name)
    if collection is None:
        raise OperationError("NotFound", 404, f"Collection `{name}` doesn't exist!")
    return collection


def collection_create(state: ClusterState, name: str, config: dict[str, Any]) -> None:
    if state.collection(name) is not None:
        raise OperationError("AlreadyExists", 409, f"Collection `{name}` already exists!")
    peers = state.peer_ids()
    if not peers:
        raise OperationError("ServiceError", 500, "No peers are registered with the coordinator")
    load: dict[int, int] = {}
    for collection in state.data["collections"].values():
        for replicas in collection["shards"].values():
            for peer in replicas:
                load[int(peer)] = load.get(int(peer), 0) + 1
    layout = placement(peers, config["shard_number"], config["replication_factor"], load)
    state.collection_add(name, config, layout, ReplicaState.INITIALIZING)


def collection_activate(state: ClusterState, name: str, ready_peers: set[int]) -> None:
    """Initializing replicas become Active on peers that created them, Dead on the others."""
    collection = collection_get(state, name)
    for shard, replicas in collection["shards"].items():
        confirmed = [p for p, st in replicas.items()
                     if st == ReplicaState.INITIALIZING and int(p) in ready_peers]
        for peer, replica_state in list(replicas.items()):
            if replica_state != ReplicaState.INITIALIZING:
                continue
            if int(peer) in ready_peers or not confirmed:
                # an unconfirmed replica of a new shard with no confirmed sibling is still a correct,
                # empty replica: it is created when its node applies the state (a failed write makes it Dead)
                state.replica_set(name, int(shard), int(peer), ReplicaState.ACTIVE, "collection.created",
                                  f"{state.peer_name(int(peer))} created its replica of shard {shard}")
            else:
                state.replica_set(name, int(shard), int(peer), ReplicaState.DEAD, "collection.create_failed",
                                  f"{state.peer_name(int(peer))} did not confirm creating its replica of "
                                  f"shard {shard}; automatic recovery will fill it")


def payload_index_set(state: ClusterState, name: str, field: str, schema: Any | None) -> None:
    """Record (or with `schema` None forget) a payload index in the collection's config, which every node
    applies (and collection info shows under `payload_schema`)."""
    config = collection_get(state, name)["config"]
    indexes = dict(config.get("payload_schema") or {})
    if schema is None:
        indexes.pop(field, None)
    else:
        indexes[field] = schema
    config["payload_schema"] = indexes


def shard_peer_check(state: ClusterState, name: str, shard: Any, peers: list[Any]) -> None:
    collection = collection_get(state, name)
    if not isinstance(shard, int) or not 0 <= shard < collection["config"]["shard_number"]:
        raise bad_request(f"Shard {shard} of {name} does not exist")
    for peer in peers:
        if not isinstance(peer, int) or str(peer) not in state.data["peers"]:
            raise bad_request(f"Peer {peer} does not exist")


def transfer_start(state: ClusterState, name: str, operation: dict[str, Any], sync: bool,
                   reason: str = "user") -> dict[str, Any]:
    """move_shard / replicate_shard: validate, then target -> Recovery and register the transfer."""
    key = "replicate_shard" if sync else "move_shard"
    shard, source, target = (operation.get("shard_id"), operation.get("from_peer_id"),
                             operation.get("to_peer_id"))
    method = operation.get("method") or "snapshot"
    if source == target and source is not None:
        raise OperationError("ValidationError", 422, f"Validation error in JSON body: [{key}.to_peer_id: "
                             f"cannot transfer shard to itself, \"to_peer_id\" must be different than {source} "
                             f"in \"from_peer_id\"]")
    shard_peer_check(state, name, shard, [target, source])
    assert isinstance(shard, int) and isinstance(source, int) and isinstance(target, int)
    if method != "snapshot":
        raise bad_request(f"Transfer method `{method}` is not supported by shardsim: use `snapshot`")
    replicas = state.replicas(name, shard)
    if replicas.get(source) != ReplicaState.ACTIVE:
        raise bad_request(f"Shard {shard} is not active on peer {source}")
    conflict = transfer_conflict(state, name, shard, source, target)
    if conflict is not None:
        raise bad_request(f"Shard {shard} is already involved in transfer {conflict['from']} -> {conflict['to']}")
    verb = "replicate" if sync else "move"
    state.replica_set(name, shard, target, ReplicaState.RECOVERY, "transfer.start",
                      f"{state.peer_name(target)}'s replica of shard {shard} enters Recovery: it will "
                      f"receive a snapshot streamed from {state.peer_name(source)} ({verb}, {reason})")
    return state.transfer_add(name, shard, source, target, sync, method, reason)


def transfer_conflict(state: ClusterState, name: str, shard: int, source: int, target: int,
                      ) -> dict[str, Any] | None:
    """The first transfer of this shard that already involves the source or the target (Qdrant's check)."""
    for transfer in state.transfers_of(name, shard):
        if {transfer["from"], transfer["to"]} & {source, target}:
            return transfer
    return None


def transfer_missing(name: str, shard: Any, source: Any, target: Any) -> OperationError:
    return OperationError("NotFound", 404, f"Shard transfer {source} -> {target} for collection {name}:{shard} "
                          f"does not exist")


def transfer_get(state: ClusterState, name: str, shard: Any, source: Any, target: Any) -> dict[str, Any]:
    transfer = state.transfer_find(name, shard, source, target)
    if transfer is None:
        raise transfer_missing(name, shard, source, target)
    return transfer


def transfer_partial(state: ClusterState, transfer: dict[str, Any], now: float) -> None:
    name, shard, target = transfer["collection"], transfer["shard_id"], transfer["to"]
    transfer["phase"] = "partial"
    transfer_stage_set(transfer, "partial", now)
    transfer["comment"] = transfer_comment(transfer, now)
    state.replica_set(name, shard, target, ReplicaState.PARTIAL, "transfer.recovered",
                      f"{state.peer_name(target)} restored the snapshot of shard {shard}: Recovery -> "
                      f"Partial, it now receives forwarded updates while the queue is replayed")


def transfer_finish(state: ClusterState, transfer: dict[str, Any]) -> None:
    name, shard, source, target = TransferKey.of(transfer)
    state.transfer_remove(transfer)
    state.replica_set(name, shard, target, ReplicaState.ACTIVE, "transfer.finished",
                      f"transfer of shard {shard} from {state.peer_name(source)} finished: "
                      f"{state.peer_name(target)}'s replica is Active")
    if not transfer["sync"] and not planted("move_keeps_source"):  # plant: move_keeps_source
        state.replica_set(name, shard, source, None, "transfer.move_source_dropped",
                          f"shard {shard} moved to {state.peer_name(target)}: the source replica on "
                          f"{state.peer_name(source)} is removed")


def transfer_abort(state: ClusterState, transfer: dict[str, Any], reason: str) -> None:
    """A sync (replicate) target becomes Dead; a move target is removed; the source is unharmed."""
    name, shard, target = transfer["collection"], transfer["shard_id"], transfer["to"]
    state.transfer_remove(transfer)
    if state.collection(name) is None:
        return
    if transfer["sync"] or planted("abort_keeps_move_target"):  # plant: abort_keeps_move_target
        left = ReplicaState.RECOVERY if planted("aborted_replicate_left_recovery") else ReplicaState.DEAD  # plant
        state.replica_set(name, shard, target, left, "transfer.aborted.sync_target_dead",
                          f"transfer of shard {shard} to {state.peer_name(target)} aborted ({reason}): "
                          f"the replicate target is marked Dead and will be re-synced by automatic recovery")
    else:
        state.replica_set(name, shard, target, None, "transfer.aborted.move_target_removed",
                          f"move of shard {shard} to {state.peer_name(target)} aborted ({reason}): the "
                          f"target replica is removed, the source keeps the shard")


def replica_dead(state: ClusterState, name: str, shard: int, peer: int, rule: str, explanation: str) -> None:
    """Mark a replica Dead as Qdrant does: the transfers of this shard it is the source or target of are
    aborted (their usual consequences apply), and it is Dead, even where a move's abort removed it. The
    decision is recorded under `rule` first, so it names the cause."""
    state.replica_set(name, shard, peer, ReplicaState.DEAD, rule, explanation)
    for transfer in state.transfers_of(name, shard):
        if peer in (transfer["from"], transfer["to"]):
            transfer_abort(state, transfer, f"{state.peer_name(peer)}'s replica of shard {shard} marked Dead")
    state.replica_set(name, shard, peer, ReplicaState.DEAD, rule, explanation)


def replica_drop(state: ClusterState, name: str, operation: dict[str, Any]) -> None:
    shard, peer = operation.get("shard_id"), operation.get("peer_id")
    shard_peer_check(state, name, shard, [peer])
    assert isinstance(shard, int) and isinstance(peer, int)
    replicas = state.replicas(name, shard)
    if peer not in replicas:
        raise bad_request(f"Peer {peer} has no replica of shard {shard}")
    others_active = [p for p, st in replicas.items() if p != peer and st == ReplicaState.ACTIVE]
    if len(replicas) == 1 or (replicas[peer] == ReplicaState.ACTIVE and not others_active):
        raise bad_request(f"Shard {shard} must have at least one active replica after removing {peer}")
    for transfer in state.transfers_of(name, shard):
        if peer in (transfer["from"], transfer["to"]):
            transfer_abort(state, transfer, f"replica on peer {peer} dropped")
    state.replica_set(name, shard, peer, None, "replica.dropped",
                      f"{state.peer_name(peer)}'s replica of shard {shard} dropped on request")


def peer_remove(state: ClusterState, peer: int, force: bool) -> list[dict[str, Any]]:
    """`DELETE /cluster/peer/{peer}`: Qdrant refuses a peer that holds any replica unless `force`; with it,
    the transfers the peer takes part in are aborted and its replicas dropped, even a shard's last one (its
    data is then gone from the cluster; recovering a snapshot on a peer brings it back). Returns the
    transfers aborted."""
    if str(peer) not in state.data["peers"]:
        raise bad_request(f"Peer {peer} does not exist")
    held = [(name, shard) for name in sorted(state.data["collections"])
            for shard, replicas in sorted(state.data["collections"][name]["shards"].items(), key=lambda i: int(i[0]))
            if str(peer) in replicas]
    if held and not force:
        raise bad_request(f"Cannot remove peer {peer} as there are shards on it")
    aborted = [t for t in state.data["transfers"] if peer in (t["from"], t["to"])]
    for transfer in aborted:
        transfer_abort(state, transfer, f"peer {peer} removed from the cluster")
    who = state.peer_name(peer)
    for name, shard in held:
        state.replica_set(name, int(shard), peer, None, "peer.removed",
                          f"{who} was removed from the cluster (force): its replica of shard {shard} is dropped")
    del state.data["peers"][str(peer)]
    return aborted


def replica_failed(state: ClusterState, name: str, shard: int, peer: int, reason: str, reporter: int | None,
                   ) -> bool:
    """A forwarded update failed on this replica: transfers involving it are aborted and it becomes Dead,
    unless it was a move's target, which the abort removed."""
    current = state.replica_state(name, shard, peer)
    if current not in UPDATABLE_STATES:
        return False
    others_active = [p for p, st in state.replicas(name, shard).items() if p != peer and st == ReplicaState.ACTIVE]
    if current == ReplicaState.ACTIVE and not others_active:
        return False  # never mark the last Active replica Dead: nothing could re-sync it
    who = state.peer_name(reporter) if reporter is not None else "a peer"
    for transfer in state.transfers_of(name, shard):
        if peer in (transfer["from"], transfer["to"]):
            transfer_abort(state, transfer, f"{state.peer_name(peer)} failed an update")
    if state.replica_state(name, shard, peer) is None:
        return True  # it was a move's target, removed by the abort: it must stay removed
    state.replica_set(name, shard, peer, ReplicaState.DEAD, "replica.update_failed",
                      f"{state.peer_name(peer)}'s replica of shard {shard} marked Dead: a forwarded update "
                      f"from {who} failed ({reason})")
    return True


# Qdrant's stages of a snapshot transfer (its `TransferStage` names), by the phase the source or the target
# last reported. A phase not listed (`attempt_failed`) keeps the stage it interrupted, as Qdrant's comment
# does while the transfer waits to retry.
PHASE_STAGES = {"started": "proxifying", "queue_installed": "recovering", "streaming": "recovering",
                "streamed": "recovering", "restored": "recovering", "queued": "waiting consensus",
                "partial": "syncing queued updates", "queue_replayed": "finalizing", "finished": "finalizing"}
# The target's own part of the `recovering` stage (Qdrant's `RecoveryStage` names); none once restored.
PHASE_RECOVERY_STAGES = {"streaming": "downloading", "streamed": "restoring"}


def started_or(started_at: Any, now: float) -> float:
    return now if started_at is None else float(started_at)


def stage_text(stage: str, started_at: float, now: float) -> str:
    """`recovering (1.25s)`: a stage and the seconds since it began, as Qdrant writes them."""
    return f"{stage} ({max(0.0, now - started_at):.2f}s)"


def transfer_comment(transfer: dict[str, Any], now: float) -> str:
    """The transfer's comment in cluster info and telemetry, as Qdrant words it: the source's stage and its
    elapsed seconds, then, while the target streams or restores, the target's stage after ` | `, with the
    bytes streamed so far (shardsim's addition), e.g.
    `recovering (1.25s) | downloading (0.40s), 1048576/5242880 bytes (20%)`; after a failed attempt
    `, attempt 2` is added to the source's part."""
    stage = transfer.get("stage") or PHASE_STAGES["started"]
    text = stage_text(stage, started_or(transfer.get("stage_started_at"), now), now)
    attempt = int(transfer.get("attempt") or 1)
    if attempt > 1:
        text += f", attempt {attempt}"
    recovery = transfer.get("recovery_stage")
    if recovery:
        total = transfer.get("bytes_total")
        done = int(transfer.get("bytes") or 0)
        progress = f"{done}/{total} bytes ({100 * done // total}%)" if total else f"{done} bytes"
        text += " | " + stage_text(recovery, started_or(transfer.get("recovery_stage_started_at"), now), now)
        text += f", {progress}"
    return text


def transfer_stage_set(transfer: dict[str, Any], phase: str | None, now: float, restart: bool = False) -> None:
    """Follow a reported phase: a new stage (or target stage) starts its clock, the same one keeps it, and a
    new attempt (`restart`) starts it again; a failed attempt ends the target's part."""
    stage = PHASE_STAGES.get(phase or "")
    if stage is not None and (restart or stage != transfer.get("stage")):
        transfer.update(stage=stage, stage_started_at=now)
    if phase in PHASE_STAGES or phase in PHASE_RECOVERY_STAGES or phase == "attempt_failed":
        recovery = PHASE_RECOVERY_STAGES.get(phase or "")
        if restart or recovery != transfer.get("recovery_stage"):
            transfer.update(recovery_stage=recovery, recovery_stage_started_at=now if recovery else None)


def comments_render(view: dict[str, Any], now: float) -> dict[str, Any]:
    """A state or a node's view with every transfer's comment written as of `now` (its stage's elapsed
    seconds grow while nothing is reported)."""
    for transfer in view.get("transfers", []):
        transfer["comment"] = transfer_comment(transfer, now)
    return view


def transfer_progress(transfer: dict[str, Any], fields: dict[str, Any], now: float) -> None:
    """Record what the source or the target reported (phase, bytes, bytes_total, attempt, queued), the stage
    it puts the transfer in, and the comment as of `now`."""
    restart = int(fields.get("attempt") or 1) > int(transfer.get("attempt") or 1)
    transfer.update(fields)
    transfer_stage_set(transfer, fields.get("phase"), now, restart)
    transfer["comment"] = transfer_comment(transfer, now)


def transfer_report(state: ClusterState, key: tuple[str, int, int, int], step: str, fields: dict[str, Any],
                    now: float) -> dict[str, Any]:
    """A step the source reported: its fields, then for `partial` target -> Partial, for `finish` the end."""
    transfer = state.transfer_find(*key)
    if transfer is None:
        raise OperationError("NotFound", 404, "transfer ended meanwhile")
    transfer_progress(transfer, fields, now)
    if step == "partial":
        transfer_partial(state, transfer, now)
    elif step == "finish":
        transfer_finish(state, transfer)
    return dict(transfer)
