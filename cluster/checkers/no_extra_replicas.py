"""Checker `no_extra_replicas`: at the end no shard has more replicas than its `replication_factor`.

A correctness verdict for runs whose operations keep each shard's replica count at the factor (moves, and
replicates that restore a dropped replica): an extra replica, in any state, is one that came back after it
was removed, e.g. a move's target that an abort removed and a late failure report then marked Dead, which
automatic recovery filled again (issue 14, defect 3). With `replication_factor` (at least that many Active)
it makes the count exact. A user's `replicate_shard` that adds a replica beyond the factor is legitimate:
runs that do that should not use this checker. So is a replica that a collection recovery created on a
peer that had none of that shard (as in Qdrant: the snapshot holds data for it): such a replica, seen in a
`replica.state` event from no state by rule `recovery.begin`, is not counted.
Shards and factors come from the meta record; replicas from the `final replicas` observation.
"""

from __future__ import annotations

from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import history_events, history_finals, history_meta

NAME = "no_extra_replicas"


def check(history: list[dict[str, Any]]) -> CheckResult:
    meta = history_meta(history)
    finals = history_finals(history, "replicas")
    if not finals or not meta.get("collections"):
        return CheckResult(NAME, None, "no final replicas observation or no collections in meta", {})
    observed = finals[-1]["value"] or {}
    recovered = {(e.get("collection"), e.get("shard"), str(e.get("peer")))
                 for _, e in history_events(history, "replica.state")
                 if e.get("from") is None and e.get("rule") == "recovery.begin"}
    extra: dict[str, dict[str, Any]] = {}
    shards = 0
    for collection, config in meta["collections"].items():
        factor = int(config.get("replication_factor", 1))
        for shard in range(int(config.get("shard_number", 1))):
            shards += 1
            peers = (observed.get(collection) or {}).get(str(shard)) or {}
            created = sorted(p for p in peers if (collection, shard, str(p)) in recovered)
            if len(peers) - len(created) > factor:
                extra[f"{collection}/{shard}"] = {"replicas": {p: r.get("state") for p, r in peers.items()},
                                                  "replication_factor": factor, "created_by_recovery": created}
    details = {"shards_checked": shards, "over_replicated": extra}
    if extra:
        return CheckResult(NAME, False, f"{len(extra)} of {shards} shards have more replicas than their "
                           f"replication factor: {', '.join(sorted(extra))}", details)
    return CheckResult(NAME, True, f"no shard of {shards} has more replicas than its replication factor", details)
