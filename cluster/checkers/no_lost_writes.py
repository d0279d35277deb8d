"""Checker `no_lost_writes`: every acknowledged write survives, and no value comes from nowhere.

For each point id of each collection, the final read after healing (`final read_all`) must be explained by
one *last write*: an upsert whose vector and payload match (or a delete, or the initial absence, when the id
is missing) that may be ordered after every acknowledged (`ok`) write of that id. A write `c` may come after
`w` unless `c` completed before `w` was invoked. `info` writes may or may not have happened: they can be the
last write but are never required to be visible. `fail` writes never happened: a value only they could have
produced is a violation of its own. Reads during the workload are not judged here.

Vectors are compared as the node stores them (`node.protocol.vectors_canonical`: float32, every named and
sparse vector), so a value written as JSON and read back as Qdrant prints it compares equal exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import Op, history_finals, history_ops
from node.protocol import (
    PointId,
    ids_sorted,
    msgpack_encode,
    payload_canonical,
    point_id_normalize,
    vectors_canonical,
)

NAME = "no_lost_writes"


Content = tuple[bytes, bytes]  # (vectors in canonical form, packed; payload as canonical JSON)


@dataclass(frozen=True)
class Write:
    """One write of one id: `content` is (vectors, payload) for an upsert, None for a delete."""

    op_id: int
    completion: str | None
    content: Content | None
    time_invoke_s: float
    time_complete_s: float


def point_content(point: dict[str, Any]) -> Content:
    vectors = point.get("vector", point.get("vectors"))
    return msgpack_encode(vectors_canonical(vectors if vectors is not None else {})), payload_canonical(
        point.get("payload"))


def content_equal(a: Content | None, b: Content | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b


def writes_by_id(ops: list[Op], collection: str) -> dict[PointId, list[Write]]:
    """Every upsert and delete of the collection, split per point id."""
    writes: dict[PointId, list[Write]] = defaultdict(list)
    for op in ops:
        if op.f not in ("upsert", "delete") or (op.value or {}).get("collection") != collection:
            continue
        for point_id, content in _op_writes(op):
            writes[point_id].append(Write(op.op_id, op.completion, content, op.time_invoke_s,
                                          op.time_complete_s))
    return writes


def _op_writes(op: Op) -> list[tuple[PointId, Content | None]]:
    if op.f == "upsert":
        return [(point_id_normalize(p["id"]), point_content(p)) for p in op.value.get("points", [])]
    return [(point_id_normalize(i), None) for i in op.value.get("ids", [])]


def id_verdict(writes: list[Write], final: Content | None) -> dict[str, Any] | None:
    """None when `final` is explained; otherwise what is wrong with this id.

    A candidate last write (matching content, or the initial absence at -inf) explains `final` when every
    acknowledged write with other content was invoked no later than the candidate completed.
    """
    happened = [w for w in writes if w.completion != "fail"]
    overwritten = [w for w in happened if w.completion == "ok" and not content_equal(w.content, final)]
    candidates_s = [w.time_complete_s for w in happened if content_equal(w.content, final)]
    if final is None:
        candidates_s.append(-math.inf)
    if not candidates_s:
        from_failed = [w.op_id for w in writes if w.completion == "fail" and content_equal(w.content, final)]
        return {"problem": "value from a failed write" if from_failed else "value no write produced",
                "op_ids": from_failed}
    latest_s = max(candidates_s)
    lost = [w.op_id for w in overwritten if w.time_invoke_s > latest_s]
    if not lost:
        return None
    return {"problem": "acknowledged write lost", "op_ids": lost}


def check(history: list[dict[str, Any]]) -> CheckResult:
    ops = history_ops(history)
    reads = {(r["value"] or {}).get("collection"): r["value"] for r in history_finals(history, "read_all")}
    written = sorted({str((op.value or {}).get("collection")) for op in ops if op.f in ("upsert", "delete")})
    missing = [c for c in written if c not in reads]
    if missing:
        return CheckResult(NAME, None, f"no final read of {', '.join(missing)}", {"collections": missing})
    problems: dict[str, dict[str, Any]] = {}
    checked = 0
    for collection, read in reads.items():
        final_points = {point_id_normalize(k): point_content(v) for k, v in (read.get("points") or {}).items()}
        writes = writes_by_id(ops, str(collection))
        for point_id in ids_sorted(set(writes) | set(final_points)):  # in id order: the report is replayable
            checked += 1
            problem = id_verdict(writes.get(point_id, []), final_points.get(point_id))
            if problem is not None:
                problems[f"{collection}/{point_id}"] = problem
    lost = sorted(k for k, v in problems.items() if v["problem"] == "acknowledged write lost")
    details = {"ids_checked": checked, "problems": problems, "lost_ids": lost,
               "lost_op_ids": sorted({i for k in lost for i in problems[k]["op_ids"]})}
    if problems:
        return CheckResult(NAME, False, f"{len(problems)} of {checked} ids wrong ({len(lost)} lost)", details)
    return CheckResult(NAME, True, f"all {checked} ids explained by a possible last write", details)
