"""Checker `replicas_converge`: after healing, the Active replicas of each shard hold the same data.

It compares the content digests of the `final replicas` observation. A shard recovered with priority `no_sync`
may legitimately diverge (docs/qdrant-semantics.md section 3: the other replicas stay Active and untouched),
so by default the checker reads the recover ops and accepts divergence on the shards they touched with
`no_sync` (a null priority means the run's default). `replicas_converge_check(allow_divergence=True)` accepts
it everywhere; `allow_divergence=False` accepts it nowhere.

A write whose outcome is unknown (no answer: the node that took it was killed, the link cut) may have
reached some replicas and not others, in Qdrant as here: nothing re-syncs replicas that are both Active. So
where the `replica_differences` observation lists the points that differ, a divergence whose points were
all written (upsert or delete) by such writes is explained, and reported apart; any other point, or no such
observation, is a divergence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import history_finals, history_meta, history_ops, priority_effective
from node.protocol import ReplicaState, SnapshotPriority

NAME = "replicas_converge"


def no_sync_shards(history: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(collection, str(shard)) pairs a `no_sync` recovery (ok or info) may have made diverge."""
    meta = history_meta(history)
    shards: set[tuple[str, str]] = set()
    for op in history_ops(history):
        value = op.value or {}
        if op.f != "snapshot_recover" or not op.may_have_happened:
            continue
        if priority_effective(value.get("priority"), meta) != SnapshotPriority.NO_SYNC:
            continue
        collection = str(value.get("collection"))
        if value.get("shard") is not None:
            shards.add((collection, str(value["shard"])))
        else:
            config = (meta.get("collections") or {}).get(collection, {})
            shards.update((collection, str(s)) for s in range(int(config.get("shard_number", 1))))
    return shards


def unknown_outcome_ids(history: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per collection, the ids (as strings) of the points that an upsert or delete of unknown outcome wrote."""
    ids: dict[str, set[str]] = {}
    for op in history_ops(history):
        if op.f not in ("upsert", "delete") or op.completion not in ("info", None):
            continue
        value = op.value or {}
        written = [p.get("id") for p in value.get("points", [])] if op.f == "upsert" else value.get("ids", [])
        ids.setdefault(str(value.get("collection")), set()).update(str(i) for i in written)
    return ids


def replicas_converge_check(allow_divergence: bool | None = None) -> Callable[[list[dict[str, Any]]], CheckResult]:
    """A checker; `allow_divergence` None reads the recover ops, True/False forces the answer."""

    def check(history: list[dict[str, Any]]) -> CheckResult:
        finals = history_finals(history, "replicas")
        if not finals:
            return CheckResult(NAME, None, "no final replicas observation", {})
        allowed = no_sync_shards(history) if allow_divergence is None else set()
        differences = (history_finals(history, "replica_differences") or [{}])[-1].get("value") or {}
        unknown = unknown_outcome_ids(history)
        explained: dict[str, list[str]] = {}
        diverged: dict[str, dict[str, str]] = {}
        tolerated: dict[str, dict[str, str]] = {}
        shards = 0
        for collection, shard_map in (finals[-1]["value"] or {}).items():
            for shard, peers in shard_map.items():
                shards += 1
                digests = {p: r.get("digest") for p, r in peers.items() if r.get("state") == ReplicaState.ACTIVE}
                if len(set(digests.values())) <= 1:
                    continue
                key = f"{collection}/{shard}"
                differing = (differences.get(collection) or {}).get(str(shard))
                if allow_divergence or (collection, str(shard)) in allowed:
                    tolerated[key] = digests
                elif differing and set(differing) <= unknown.get(collection, set()):
                    explained[key] = differing
                else:
                    diverged[key] = digests
        details = {"shards_checked": shards, "diverged": diverged, "divergence_allowed": tolerated,
                   "divergence_unknown_writes": explained}
        if diverged:
            return CheckResult(NAME, False, f"{len(diverged)} of {shards} shards diverged: "
                               f"{', '.join(sorted(diverged))}", details)
        note = f" ({len(tolerated)} diverged as no_sync allows)" if tolerated else ""
        if explained:
            note += (f" ({len(explained)} diverged only on points of writes whose outcome is unknown: "
                     f"{', '.join(sorted(explained))})")
        return CheckResult(NAME, True, f"Active replicas agree on all {shards} shards{note}", details)

    return check


check = replicas_converge_check()
