"""Automatic recovery: which Dead replicas to re-sync now, and from where, and which peers count as healthy
for it. Pure functions.

A Dead replica is re-synced by a snapshot transfer (replicate) from an Active replica of the same shard on a
healthy peer, respecting the per-peer limits on incoming and outgoing transfers (default 1 each; a limit
of 0 turns automatic recovery off). A replica whose last attempt failed waits for its backoff to pass.
As in Qdrant, where a Dead replica is re-synced by its own peer, a replica is re-synced only once its peer
is up: a peer that failed an update is healthy again only after a health check that started after the
failure (`peers_healthy`), never on the strength of an older one (issue 18, item 2). And a recovery that
cannot progress, because its source or target is down, does not block a user's transfer of the same shard:
the user's transfer replaces it (`recoveries_stalled`); the replica stays Dead and is recovered later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cluster.coordinator.state import ClusterState
from node.protocol import ReplicaState

Candidate = tuple[str, int, int, int]  # collection, shard, source, target
AUTOMATIC_REASON = "automatic recovery of a Dead replica"  # the `reason` of the transfers started here


def peers_healthy(ready: Mapping[int, bool], round_started: float, failed_at: Mapping[int, float]) -> set[int]:
    """The peers that answered a health round which started after their last failed update (if any)."""
    return {peer for peer, answered in ready.items() if answered and failed_at.get(peer, -math.inf) < round_started}


def recoveries_stalled(state: ClusterState, name: str, shard: int, source: int, target: int,
                       healthy: set[int]) -> list[dict[str, Any]]:
    """The automatic recoveries of this shard that involve `source` or `target` (so they would refuse a
    transfer between them) and cannot progress: their source or target is not healthy."""
    return [t for t in state.transfers_of(name, shard)
            if t.get("reason") == AUTOMATIC_REASON and {t["from"], t["to"]} & {source, target}
            and not {t["from"], t["to"]} <= healthy]


def transfer_counts(state: ClusterState) -> tuple[dict[int, int], dict[int, int]]:
    incoming: dict[int, int] = {}
    outgoing: dict[int, int] = {}
    for transfer in state.data["transfers"]:
        incoming[transfer["to"]] = incoming.get(transfer["to"], 0) + 1
        outgoing[transfer["from"]] = outgoing.get(transfer["from"], 0) + 1
    return incoming, outgoing


def recovery_candidates(state: ClusterState, healthy: set[int], not_before: Mapping[tuple[str, int, int], float],
                        now: float) -> list[Candidate]:
    settings = state.data["settings"]
    incoming_limit = int(settings.get("incoming_transfers_limit", 1))
    outgoing_limit = int(settings.get("outgoing_transfers_limit", 1))
    if incoming_limit <= 0 or outgoing_limit <= 0:
        return []
    incoming, outgoing = transfer_counts(state)
    chosen: list[Candidate] = []
    for name in sorted(state.data["collections"]):
        collection = state.data["collections"][name]
        for shard_key in sorted(collection["shards"], key=int):
            shard = int(shard_key)
            replicas = state.replicas(name, shard)
            busy = {p for t in state.transfers_of(name, shard) for p in (t["from"], t["to"])}
            for target, replica_state in sorted(replicas.items()):
                if replica_state != ReplicaState.DEAD or target in busy or target not in healthy:
                    continue
                if not_before.get((name, shard, target), 0.0) > now:
                    continue
                if incoming.get(target, 0) >= incoming_limit:
                    continue
                sources = [p for p, st in sorted(replicas.items()) if st == ReplicaState.ACTIVE and p in healthy
                           and p not in busy and outgoing.get(p, 0) < outgoing_limit]
                if not sources:
                    continue
                source = sources[0]
                chosen.append((name, shard, source, target))
                incoming[target] = incoming.get(target, 0) + 1
                outgoing[source] = outgoing.get(source, 0) + 1
                busy |= {source, target}
    return chosen
