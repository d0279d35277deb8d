"""Checker `snapshot_integrity`: snapshot files are what they claim, and corrupt snapshots change nothing.

Three parts:
1. every file in the `final snapshot_files` observation has its `.checksum` sidecar equal to the SHA-256 of
   its bytes (a missing sidecar counts as a mismatch: the node always writes one) and its manifest digest
   equal to the digest of the points it holds;
2. every `snapshot.created` event's checksum equals the actual checksum of that file, when the file was
   observed (a deleted snapshot has no file to compare);
3. every recover op marked `corrupt` failed, and the replicas of the shards it targeted end with the content
   the priority oracle predicts without that recovery (when the oracle can predict it).
"""

from __future__ import annotations

from typing import Any

from cluster.checkers.oracle_model import oracle_predict
from cluster.checkers.result import CheckResult
from cluster.history import Op, history_events, history_finals, history_meta, history_ops

NAME = "snapshot_integrity"


def files_problems(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    problems = []
    for entry in files:
        where = {k: entry.get(k) for k in ("peer", "collection", "shard", "name")}
        if entry.get("checksum_sidecar") != entry.get("checksum_actual"):
            problems.append({**where, "problem": "sidecar checksum differs from the file's SHA-256",
                             "sidecar": entry.get("checksum_sidecar"), "actual": entry.get("checksum_actual")})
        if entry.get("digest_manifest") != entry.get("digest_actual"):
            problems.append({**where, "problem": "manifest digest differs from the points' digest",
                             "manifest": entry.get("digest_manifest"), "actual": entry.get("digest_actual")})
    return problems


def events_problems(history: list[dict[str, Any]], files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    actual = {(str(f.get("peer")), f.get("name")): f.get("checksum_actual") for f in files}
    by_name = {f.get("name"): f.get("checksum_actual") for f in files}
    problems = []
    for time_s, event in history_events(history, "snapshot.created"):
        peer = str(event.get("source", "")).rpartition("/")[2]
        found = actual.get((peer, event.get("name")), by_name.get(event.get("name")))
        if found is not None and event.get("checksum") != found:
            problems.append({"time": time_s, "name": event.get("name"), "problem":
                             "snapshot.created checksum differs from the file", "event_checksum":
                             event.get("checksum"), "actual": found})
    return problems


def corrupt_problems(history: list[dict[str, Any]], corrupt: list[Op]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = [{"op_id": op.op_id, "problem": f"corrupt recovery ended {op.completion}"}
                                      for op in corrupt if op.completion != "fail"]
    finals = history_finals(history, "replicas")
    if not corrupt or not finals:
        return problems
    observed = finals[-1]["value"] or {}
    for op in corrupt:
        without = [r for r in history if not (r.get("op_id") == op.op_id and r.get("type") != "event")]
        try:
            predictions = oracle_predict(history_meta(history), without)
        except ValueError:
            continue  # no placement known: only the completion of the op can be judged
        value = op.value or {}
        for (collection, shard, peer), prediction in predictions.items():
            if collection != value.get("collection") or prediction.digest is None:
                continue
            if value.get("shard") is not None and shard != int(value["shard"]):
                continue
            seen = ((observed.get(collection) or {}).get(str(shard)) or {}).get(str(peer))
            if seen is not None and seen.get("digest") != prediction.digest:
                problems.append({"op_id": op.op_id, "replica": f"{collection}/{shard}/{peer}", "problem":
                                 "data changed by a corrupt recovery", "expected_digest": prediction.digest,
                                 "observed_digest": seen.get("digest")})
    return problems


def check(history: list[dict[str, Any]]) -> CheckResult:
    file_finals = history_finals(history, "snapshot_files")
    corrupt = [op for op in history_ops(history)
               if op.f == "snapshot_recover" and (op.value or {}).get("corrupt")]
    if not file_finals and not corrupt:
        return CheckResult(NAME, None, "no snapshot files observed and no corrupt recovery", {})
    files = [f for record in file_finals for f in record.get("value") or []]
    found = {"files": files_problems(files), "events": events_problems(history, files),
             "corrupt": corrupt_problems(history, corrupt)}
    details: dict[str, Any] = {"files_checked": len(files), "corrupt_recoveries": [op.op_id for op in corrupt],
                               **found}
    count = sum(len(problems) for problems in found.values())
    if count:
        kinds = [k for k, problems in found.items() if problems]
        return CheckResult(NAME, False, f"{count} integrity problems ({', '.join(kinds)})", details)
    return CheckResult(NAME, True, f"{len(files)} files intact, {len(corrupt)} corrupt recoveries refused "
                       "without changing data", details)
