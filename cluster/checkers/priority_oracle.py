"""Checker `priority_oracle`: each replica ended as the recovery rules say it should.

It runs the model (`oracle_model.oracle_predict`) over the history and compares every prediction with the
`final replicas` observation: a replica predicted `Removed` must be gone; any other must be there, in the
predicted state, with the predicted content digest (when the model could predict it). A replica observed
but never predicted is a mismatch too. Each mismatch carries the rule and explanation that made the
prediction, so the report can say which rule was expected to fire.
"""

from __future__ import annotations

from typing import Any

from cluster.checkers.oracle_model import oracle_predict
from cluster.checkers.oracle_types import Prediction
from cluster.checkers.result import CheckResult
from cluster.history import history_finals, history_meta

NAME = "priority_oracle"


def prediction_compare(prediction: Prediction | None, observed: dict[str, Any] | None) -> str | None:
    """What differs between one prediction and one observed replica (None: they agree)."""
    if prediction is None:
        return "replica observed but not predicted"
    if prediction.state == "Removed":
        return None if observed is None else "predicted removed, still present"
    if observed is None:
        return None if prediction.state is None else "predicted present, missing"
    if prediction.state is not None and observed.get("state") != prediction.state:
        return f"state {observed.get('state')}, predicted {prediction.state}"
    if prediction.digest is not None and observed.get("digest") != prediction.digest:
        return "content digest differs from the prediction"
    return None


def check(history: list[dict[str, Any]]) -> CheckResult:
    finals = history_finals(history, "replicas")
    meta = history_meta(history)
    if not finals or not meta:
        return CheckResult(NAME, None, "no meta record or no final replicas observation", {})
    predictions = oracle_predict(meta, history)
    observed = {(c, int(s), int(p)): r for c, shards in (finals[-1]["value"] or {}).items()
                for s, peers in shards.items() for p, r in peers.items()}
    mismatches: dict[str, dict[str, Any]] = {}
    for key in sorted(set(predictions) | set(observed)):
        prediction = predictions.get(key)
        problem = prediction_compare(prediction, observed.get(key))
        if problem is not None:
            mismatches["/".join(map(str, key))] = {
                "problem": problem, "observed": observed.get(key),
                "predicted": None if prediction is None else prediction.to_dict()}
    unpredictable = sorted("/".join(map(str, k)) for k, p in predictions.items()
                           if p.digest is None and p.state != "Removed")
    details = {"default_priority": meta.get("default_priority"), "mismatches": mismatches,
               "unpredictable": unpredictable,
               "predictions": {"/".join(map(str, k)): p.to_dict() for k, p in predictions.items()}}
    note = f" ({len(unpredictable)} replicas' content not predictable)" if unpredictable else ""
    if mismatches:
        return CheckResult(NAME, False, f"{len(mismatches)} of {len(predictions)} replicas differ from the "
                           f"oracle{note}", details)
    return CheckResult(NAME, True, f"all {len(predictions)} replicas as the oracle predicts{note}", details)
