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
                             f"source and target peers must be different]")
    shard_peer_check(state, name, shard, [source, target])
    assert isinstance(shard, int) and isinstance(source, int) and isinstance(target, int)
    if method != "snapshot":
        raise bad_request(f"Transfer method `{method}` is not supported by shardsim: use `snapshot`")
    replicas = state.replicas(name, shard)
    if replicas.get(source) != ReplicaState.ACTIVE:
        raise bad_request(f"Shard {shard} is not active on peer {source}")
    for transfer in state.transfers_of(name, shard):
        if {transfer["from"], transfer["to"]} & {source, target}:
            raise bad_request(f"Shard {shard} is already involved in transfer {transfer['from']} -> "
                              f"{transfer['to']}")
    if replicas.get(target) in UPDATABLE_STATES:
        raise bad_request(f"Shard {shard} is already present on peer {target}")
    verb = "replicate" if sync else "move"
    state.replica_set(name, shard, target, ReplicaState.RECOVERY, "transfer.start",
                      f"{state.peer_name(target)}'s replica of shard {shard} enters Recovery: it will "
                      f"receive a snapshot streamed from {state.peer_name(source)} ({verb}, {reason})")
    return state.transfer_add(name, shard, source, target, sync, method, reason)


def transfer_get(state: ClusterState, name: str, shard: Any, source: Any, target: Any) -> dict[str, Any]:
    transfer = state.transfer_find(name, shard, source, target)
    if transfer is None:
        raise OperationError("NotFound", 404, f"Shard transfer {source} -> {target} of shard {shard} of "
                             f"collection {name} does not exist")
    return transfer


def transfer_partial(state: ClusterState, transfer: dict[str, Any]) -> None:
    name, shard, target = transfer["collection"], transfer["shard_id"], transfer["to"]
    transfer.update(phase="partial", comment=f"restored on {state.peer_name(target)}; replaying queued updates")
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


def replica_drop(state: ClusterState, name: str, operation: dict[str, Any]) -> None:
    shard, peer = operation.get("shard_id"), operation.get("peer_id")
    shard_peer_check(state, name, shard, [peer])
    assert isinstance(shard, int) and isinstance(peer, int)
    replicas = state.replicas(name, shard)
    if peer not in replicas:
        raise bad_request(f"Shard {shard} of {name} does not exist on peer {peer}")
    others_active = [p for p, st in replicas.items() if p != peer and st == ReplicaState.ACTIVE]
    if replicas[peer] == ReplicaState.ACTIVE and not others_active:
        raise bad_request(f"Shard {shard} must have at least one active replica after removing peer {peer}")
    for transfer in state.transfers_of(name, shard):
        if peer in (transfer["from"], transfer["to"]):
            transfer_abort(state, transfer, f"replica on peer {peer} dropped")
    state.replica_set(name, shard, peer, None, "replica.dropped",
                      f"{state.peer_name(peer)}'s replica of shard {shard} dropped on request")


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


def transfer_comment(transfer: dict[str, Any]) -> str:
    """The transfer's line in cluster info: `attempt 1: streaming, 1048576/5242880 bytes (20%) streamed`."""
    total = transfer.get("bytes_total")
    done = transfer.get("bytes") or 0
    progress = f"{done}/{total} bytes ({100 * done // total}%)" if total else f"{done} bytes"
    return f"attempt {transfer.get('attempt', 1)}: {transfer.get('phase')}, {progress} streamed"


def transfer_progress(transfer: dict[str, Any], fields: dict[str, Any]) -> None:
    """Record what the source reported (phase, bytes, bytes_total, attempt, queued) and the comment."""
    transfer.update(fields)
    transfer["comment"] = transfer_comment(transfer)


def transfer_report(state: ClusterState, key: tuple[str, int, int, int], step: str, fields: dict[str, Any],
                    ) -> dict[str, Any]:
    """A step the source reported: its fields, then for `partial` target -> Partial, for `finish` the end."""
    transfer = state.transfer_find(*key)
    if transfer is None:
        raise OperationError("NotFound", 404, "transfer ended meanwhile")
    transfer_progress(transfer, fields)
    if step == "partial":
        transfer_partial(state, transfer)
    elif step == "finish":
        transfer_finish(state, transfer)
    return dict(transfer)
