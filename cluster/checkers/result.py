"""The verdict of one checker, and how a set of verdicts becomes the kind of exit a run gets.

Jepsen's vocabulary: `valid` is True, False or None (unknown: the checker could not decide, or crashed).
Results are plain data so `verdicts.json` and the HTML report can show them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ExitKind = Literal["ok", "correctness", "liveness", "unknown"]

LIVENESS_CHECKERS = frozenset({"nothing_stuck", "replication_factor"})
EXIT_CODES: dict[str, int] = {"ok": 0, "correctness": 1, "liveness": 2, "unknown": 3, "crash": 3}


@dataclass
class CheckResult:
    name: str
    valid: bool | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "valid": self.valid, "summary": self.summary,
                "details": _json_safe(self.details)}


def _json_safe(value: Any) -> Any:
    """Tuples and non-string keys become JSON-friendly; anything else unknown becomes its str()."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_json_safe(v) for v in items]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def results_exit_kind(results: list[CheckResult]) -> ExitKind:
    """The worst outcome: a correctness violation beats a liveness one, which beats unknown.

    `crash` (the tool itself failed) is decided by the runner, never from results.
    """
    failed = {r.name for r in results if r.valid is False}
    if failed - LIVENESS_CHECKERS:
        return "correctness"
    if failed:
        return "liveness"
    if any(r.valid is None for r in results):
        return "unknown"
    return "ok"
