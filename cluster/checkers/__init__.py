"""Checkers: pure functions that judge a run's history, one invariant per module.

Each checker is `check(history: list[dict]) -> CheckResult` (valid True, False or None for unknown). They
do no I/O and compose: `run_checkers(history, names)` runs the named ones and turns a checker that raises
into an unknown verdict that says so, instead of hiding the other results. docs/checkers.md describes the
history format and each invariant; `oracle_predict` is the priority oracle's model, usable alone.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

from cluster.checkers import (
    no_extra_replicas,
    no_lost_writes,
    nothing_stuck,
    priority_oracle,
    replicas_converge,
    replication_factor,
    snapshot_integrity,
    transfer_retries,
)
from cluster.checkers.oracle_model import oracle_predict
from cluster.checkers.oracle_types import Prediction
from cluster.checkers.result import EXIT_CODES, CheckResult, results_exit_kind

Checker = Callable[[list[dict[str, Any]]], CheckResult]

CHECKERS: dict[str, Checker] = {
    "no_lost_writes": no_lost_writes.check,
    "replicas_converge": replicas_converge.check,
    "nothing_stuck": nothing_stuck.check,
    "replication_factor": replication_factor.check,
    "no_extra_replicas": no_extra_replicas.check,
    "snapshot_integrity": snapshot_integrity.check,
    "priority_oracle": priority_oracle.check,
    "transfer_retries": transfer_retries.check,
}


def run_checkers(history: list[dict[str, Any]], names: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the named checkers (all by default) in order; unknown names and crashes become unknown verdicts."""
    results = []
    for name in list(CHECKERS) if names is None else list(names):
        checker = CHECKERS.get(name)
        if checker is None:
            results.append(CheckResult(name, None, f"no checker named {name!r}", {"known": sorted(CHECKERS)}))
            continue
        try:
            results.append(checker(history))
        except Exception as error:  # a crashing checker must not hide the others: it yields unknown
            results.append(CheckResult(name, None, f"checker crashed: {type(error).__name__}: {error}",
                                       {"traceback": traceback.format_exc(limit=8)}))
    return results


__all__ = ["CHECKERS", "EXIT_CODES", "CheckResult", "Checker", "Prediction", "oracle_predict",
           "results_exit_kind", "run_checkers"]
