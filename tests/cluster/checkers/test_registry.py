"""The checker registry: every checker runs by name, crashes become unknown, results serialise to JSON."""

from __future__ import annotations

import json

from cluster.checkers import CHECKERS, CheckResult, results_exit_kind, run_checkers
from tests.cluster.checkers.histories import final_replicas, meta, point, read_all, upsert

A = "a" * 64


def test_registry_names_every_invariant() -> None:
    assert set(CHECKERS) == {"no_lost_writes", "replicas_converge", "nothing_stuck", "replication_factor",
                             "no_extra_replicas", "snapshot_integrity", "priority_oracle", "transfer_retries"}


def test_crashing_checker_yields_unknown_and_the_others_still_run() -> None:
    broken = [meta(), {"type": "invoke", "time": 1.0, "op_id": 1, "f": "upsert",
                       "value": {"collection": "c", "points": [{"id": -5, "vector": [1.0]}]}},
              read_all([]), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A)})]
    results = run_checkers(broken, ["no_lost_writes", "replication_factor", "no_such_checker"])
    assert [r.valid for r in results] == [None, True, None]
    assert "crashed" in results[0].summary and "ValueError" in results[0].summary
    assert "no checker named" in results[2].summary


def test_results_are_json_serialisable_and_give_the_exit_kind() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0)], 1.0, 1.1), read_all([point(1, 1.0)]),
               final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Dead", A)})]
    results = run_checkers(history)
    text = json.dumps([r.to_dict() for r in results])
    assert json.loads(text)[0]["name"] == "no_lost_writes"
    assert results_exit_kind(results) == "correctness"  # the oracle expected peer 2 Active


def test_exit_kind_orders_correctness_over_liveness_over_unknown() -> None:
    ok, unknown = CheckResult("no_lost_writes", True, ""), CheckResult("priority_oracle", None, "")
    stuck = CheckResult("nothing_stuck", False, "")
    assert results_exit_kind([ok]) == "ok"
    assert results_exit_kind([ok, unknown]) == "unknown"
    assert results_exit_kind([ok, unknown, stuck]) == "liveness"
    assert results_exit_kind([stuck, CheckResult("replicas_converge", False, "")]) == "correctness"
