"""Literal cluster states for the coordinator's unit tests, and readers of what a function did to them.

`cluster_state({0: {1: "Active", 2: "Active"}})` is collection `c` with shard 0 held Active by peers 1 and
2, on peers 1, 2 and 3 (named n1, n2, n3), with the coordinator's default settings. The data has the wire
shape of `ClusterState.data` (node/protocol.py): string keys, replica map `shard -> peer -> state`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.coordinator.state import ClusterState

ReplicaMap = dict[int, dict[int, str]]


def transfer_literal(shard: int, source: int, target: int, sync: bool = True, name: str = "c",
                     phase: str = "started", attempt: int = 1, reason: str = "user") -> dict[str, Any]:
    """A transfer as the coordinator registers it (`ClusterState.transfer_add`)."""
    return {"collection": name, "shard_id": shard, "from": source, "to": target, "sync": sync,
            "method": "snapshot", "phase": phase, "bytes": 0, "bytes_total": None, "attempt": attempt,
            "reason": reason, "started_at": 0.0, "stage": "proxifying", "stage_started_at": 0.0,
            "recovery_stage": None, "recovery_stage_started_at": None, "comment": "proxifying (0.00s)"}


def cluster_state(shards: ReplicaMap, *, peers: Iterable[int] = (1, 2, 3), replication_factor: int = 2,
                  transfers: Iterable[dict[str, Any]] = (), name: str = "c",
                  more: dict[str, ReplicaMap] | None = None, **settings: Any) -> ClusterState:
    """Collection `name` with the replica map `shards` (and collections `more`), transfers, settings."""
    collections = {name: shards, **(more or {})}
    data: dict[str, Any] = {
        "version": 7,
        "peers": {str(p): {"peer_id": p, "name": f"n{p}", "address": f"127.0.0.1:{6330 + p}"} for p in peers},
        "links": {},
        "collections": {
            collection: {"config": {"shard_number": len(replica_map), "replication_factor": replication_factor},
                         "shards": {str(s): {str(p): st for p, st in replicas.items()}
                                    for s, replicas in replica_map.items()}}
            for collection, replica_map in collections.items()},
        "transfers": list(transfers),
        "settings": {"default_priority": "replica", "incoming_transfers_limit": 1, "outgoing_transfers_limit": 1,
                     **settings}}
    return ClusterState(data)


def replicas_of(state: ClusterState, name: str = "c") -> ReplicaMap:
    """The replica map of one collection, with integer keys."""
    collection = state.collection(name)
    assert collection is not None, f"collection {name} is gone"
    return {int(s): {int(p): st for p, st in replicas.items()} for s, replicas in collection["shards"].items()}


def transfers_in(state: ClusterState) -> list[tuple[str, int, int, int, bool]]:
    """The transfers in progress as `(collection, shard, from, to, sync)`."""
    return [(t["collection"], t["shard_id"], t["from"], t["to"], t["sync"]) for t in state.data["transfers"]]


def rules_of(state: ClusterState) -> list[tuple[int, int, str | None, str | None, str]]:
    """The decisions recorded since the last commit as `(shard, peer, from, to, rule)`."""
    return [(d.shard, d.peer, d.before, d.to, d.rule) for d in state.decisions]
