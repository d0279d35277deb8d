"""Checker `replication_factor`: at the end every shard has at least `replication_factor` Active replicas.

Shards and factors come from the meta record's collections; replicas from the `final replicas` observation.
The requirement is capped at the number of peers in the meta record (a factor above it cannot be met).
"""

from __future__ import annotations

from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import history_finals, history_meta
from node.protocol import ReplicaState

NAME = "replication_factor"


def check(history: list[dict[str, Any]]) -> CheckResult:
    meta = history_meta(history)
    finals = history_finals(history, "replicas")
    if not finals or not meta.get("collections"):
        return CheckResult(NAME, None, "no final replicas observation or no collections in meta", {})
    observed = finals[-1]["value"] or {}
    peers_count = len(meta.get("peers") or {}) or None
    short: dict[str, dict[str, Any]] = {}
    shards = 0
    for collection, config in meta["collections"].items():
        factor = int(config.get("replication_factor", 1))
        required = min(factor, peers_count) if peers_count else factor
        for shard in range(int(config.get("shard_number", 1))):
            shards += 1
            peers = (observed.get(collection) or {}).get(str(shard)) or {}
            active = sorted(p for p, r in peers.items() if r.get("state") == ReplicaState.ACTIVE)
            if len(active) < required:
                short[f"{collection}/{shard}"] = {"active_peers": active, "required": required}
    details = {"shards_checked": shards, "under_replicated": short}
    if short:
        return CheckResult(NAME, False, f"{len(short)} of {shards} shards under-replicated: "
                           f"{', '.join(sorted(short))}", details)
    return CheckResult(NAME, True, f"all {shards} shards have their replication factor Active", details)
