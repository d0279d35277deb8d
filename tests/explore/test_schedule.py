"""Schedules are data: validated, normalized, dumped and read back, and translated to one scenario file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.explore.codegen import scenario_from_schedule, scenario_source
from cluster.explore.schedule import (
    ScheduleError,
    schedule_checkers,
    schedule_dump,
    schedule_load,
    schedule_normalize,
    schedule_save,
)
from cluster.runner.scenario import scenario_load


def schedule(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "format": 1, "name": "t-1", "seed": 5, "nodes": 3,
        "collections": [{"name": "c", "shards": 2, "replication_factor": 2}],
        "workload": {"load": 100, "writers": 1},
        "steps": [{"op": "move", "collection": "c", "shard": 1,
                   "faults": [{"kind": "kill_target", "phase": "restored", "duration_ms": 1500}]}],
    }
    base.update(changes)
    return base


def test_defaults_are_filled_in_and_the_document_is_unchanged() -> None:
    document = schedule()
    normal = schedule_normalize(document)
    assert normal["default_priority"] == "replica" and normal["timed_faults"] == []
    assert normal["workload"] == {"collection": "c", "load": 100, "writers": 1, "batch": 3, "interval_ms": 50,
                                  "overwrites": False, "deletes": False, "reads": False}
    fault = normal["steps"][0]["faults"][0]
    assert fault == {"kind": "kill_target", "phase": "restored", "at_ms": None, "fraction": 0.5, "delay_ms": 0,
                     "duration_ms": 1500, "on": None, "amount": None}
    assert "timed_faults" not in document
    assert schedule_normalize(normal) == normal


def test_a_dumped_schedule_reads_back_equal(tmp_path: Path) -> None:
    normal = schedule_normalize(schedule(timed_faults=[{"kind": "latency", "at_ms": 300, "amount": 80}]))
    path = tmp_path / "s.json"
    schedule_save(normal, path)
    assert schedule_load(path) == normal
    assert json.loads(schedule_dump(normal)) == normal
    assert schedule_dump(normal).count("\n") > 8, "one step per line, readable"


@pytest.mark.parametrize(("changes", "words"), [
    ({"format": 2}, "format 1"),
    ({"nodes": 9}, "outside 2..5"),
    ({"steps": [{"op": "teleport"}]}, "not one of"),
    ({"steps": [{"op": "move", "collection": "zz"}]}, "not a collection"),
    ({"steps": [{"op": "move", "collection": "c", "faults": [{"kind": "meteor", "phase": "restored"}]}]},
     "kind"),
    ({"steps": [{"op": "move", "collection": "c", "faults": [{"kind": "latency", "phase": "restored",
                                                              "on": "sideways"}]}]}, "on"),
    ({"steps": [{"op": "drop", "collection": "c", "shard": 0}]}, "not its replication factor"),
    ({"steps": [{"op": "replicate", "collection": "c", "shard": 0}]}, "beyond the replication factor"),
    ({"steps": [{"op": "recover", "label": "s1"}]}, "before it is taken"),
    ({"steps": [{"op": "snapshot", "label": "s1", "collection": "c"},
                {"op": "recover", "label": "s1", "corrupt": "bytes"}]}, "by upload"),
    ({"nodes": 2, "steps": [{"op": "move", "collection": "c"}]}, "without a replica"),
    ({"name": "a b"}, "name"),
    ({"surprise": 1}, "unknown field"),
])
def test_invalid_schedules_say_what_is_wrong(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        schedule_normalize(schedule(**changes))


def test_a_drop_then_a_replicate_keeps_the_replica_count() -> None:
    steps = [{"op": "drop", "collection": "c", "shard": 0, "replica": 1},
             {"op": "replicate", "collection": "c", "shard": 0, "target": 2}]
    assert len(schedule_normalize(schedule(steps=steps))["steps"]) == 2


def test_checkers_fit_what_the_schedule_does() -> None:
    moves = schedule_checkers(schedule_normalize(schedule()))
    assert "no_lost_writes" in moves and "priority_oracle" not in moves and "transfer_retries" in moves
    steps = [{"op": "snapshot", "label": "s1", "collection": "c", "shard": 0},
             {"op": "recover", "label": "s1", "priority": "snapshot"}]
    recovering = schedule_checkers(schedule_normalize(schedule(steps=steps)))
    assert "no_lost_writes" not in recovering, "a snapshot recovery overwrites later writes on purpose"
    assert "priority_oracle" in recovering and "snapshot_integrity" in recovering
    corrupt = [steps[0], {"op": "recover", "label": "s1", "via": "upload", "corrupt": "checksum"}]
    assert "no_lost_writes" in schedule_checkers(schedule_normalize(schedule(steps=corrupt)))


def test_the_scenario_file_is_the_translation(tmp_path: Path) -> None:
    """A schedule's Scenario is what its written scenario file defines: same shape, checkers and plan code."""
    document = schedule(collections=[{"name": "c", "shards": 2, "replication_factor": 2},
                                     {"name": "d", "vectors": "named", "created": "step"}],
                        steps=[*schedule()["steps"], {"op": "create_collection", "collection": "d"},
                               {"op": "fault", "fault": {"kind": "partition", "on": "source"}}],
                        timed_faults=[{"kind": "broker_outage", "at_ms": 500}])
    path = tmp_path / "t-1.py"
    path.write_text(scenario_source(document))
    from_file = scenario_load(path)
    translated = scenario_from_schedule(document)
    assert from_file.plan.__code__.co_code == translated.plan.__code__.co_code
    assert (from_file.nodes, from_file.checkers, from_file.collections) == \
        (translated.nodes, translated.checkers, translated.collections)
    assert from_file.collections["d"].created_in_setup is False
    text = path.read_text()
    assert "await run.move('c', shard=1, source=0, target=0, faults=[Fault('kill_target', 'restored', " \
           "duration_ms=1500)])" in text
    assert "shardsim replay scenarios/found/t-1.json" in text


def test_names_and_labels_cannot_smuggle_code() -> None:
    with pytest.raises(ScheduleError):
        scenario_source(schedule(steps=[{"op": "snapshot", "label": "x'); import os; ('", "collection": "c"}]))
