"""The history file: what HistoryWriter writes, history_load reads back, and ops pair invoke with completion."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cluster.history import HistoryWriter, history_load, history_ops, priority_effective


def test_writer_round_trip_and_op_pairing(tmp_path: Path) -> None:
    path = tmp_path / "run" / "history.jsonl"
    with HistoryWriter(path) as history:
        history.meta("s1", 42, "shardsim run s1 --seed 42", "replica",
                     {"c": {"shard_number": 1, "replication_factor": 2, "write_consistency_factor": 1}},
                     {1: "n1", 2: "n2"})
        history.phase("workload")
        first = history.op_invoke(0, "upsert", {"collection": "c", "points": [{"id": 1, "vector": [1.0]}]})
        second = history.op_invoke(1, "delete", {"collection": "c", "ids": [1]})
        history.op_complete(second, "info", error="timeout")
        history.op_complete(first, "ok")
        history.op_invoke(2, "read", {"collection": "c", "ids": [1]})
        history.event({"ts": 1.0, "source": "coordinator", "kind": "node.started", "peer_id": 1, "name": "n1"})
        history.final("replicas", {"c": {"0": {"1": {"state": "Active", "digest": "0" * 64, "points_count": 0}}}})
    records = history_load(path)
    assert [r["type"] for r in records] == ["meta", "phase", "invoke", "invoke", "info", "ok", "invoke", "event",
                                           "final"]
    assert records[0]["peers"] == {"1": "n1", "2": "n2"}
    assert all(a["time"] <= b["time"] for a, b in zip(records[1:], records[2:], strict=False))
    ops = history_ops(records)
    assert [(op.f, op.completion) for op in ops] == [("upsert", "ok"), ("delete", "info"), ("read", None)]
    assert ops[0].time_complete_s < math.inf and ops[1].time_complete_s == math.inf
    assert ops[1].error == "timeout" and ops[1].may_have_happened


def test_torn_last_line_is_dropped_but_a_torn_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"type": "phase", "time": 1.0, "name": "setup"}\n{"type": "ph')
    assert history_load(path) == [{"type": "phase", "time": 1.0, "name": "setup"}]
    path.write_text('{"type": "ph\n{"type": "phase", "time": 1.0, "name": "setup"}\n')
    with pytest.raises(ValueError, match="history.jsonl:1"):
        history_load(path)


def test_null_priority_means_the_run_default() -> None:
    assert priority_effective(None, {"default_priority": "snapshot"}) == "snapshot"
    assert priority_effective("no_sync", {"default_priority": "snapshot"}) == "no_sync"
    assert priority_effective(None, {}) == "replica"
