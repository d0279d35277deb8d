"""Checker `transfer_retries`: a transfer the source gave up on failed every one of its attempts first.

docs/cluster.md section 4: a failed attempt is retried (3 attempts, waits of 1 s and 2 s), then the transfer
is aborted. So a `transfer.aborted` whose reason is the source's `transmission failed after N attempts`
must follow an `attempt_failed` phase event for each attempt 1..3 of that transfer (counted since its
`transfer.started`). Fewer means the source gave up early: a transfer that a later attempt would have
finished was abandoned. Aborts for other reasons (the user, a restarted peer, a failed update, a dropped
replica) are not judged. Unknown when a broker outage may have swallowed the events.
"""

from __future__ import annotations

from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import history_events, history_meta
from node.protocol import TRANSFER_RETRY_WAITS_S, TransferKey

NAME = "transfer_retries"
ATTEMPTS_DEFAULT = len(TRANSFER_RETRY_WAITS_S) + 1
GAVE_UP_PREFIX = "transmission failed"


def check(history: list[dict[str, Any]]) -> CheckResult:
    meta = history_meta(history) or {}
    expected = int(meta.get("transfer_attempts") or ATTEMPTS_DEFAULT)
    failed: dict[TransferKey, set[int]] = {}
    judged = 0
    early: list[dict[str, Any]] = []
    outage = any(event.get("fault") == "broker_outage" for _t, event in history_events(history, "fault.applied"))
    for time_s, event in history_events(history, "transfer."):
        key = TransferKey.of(event)
        if event["kind"] == "transfer.started":
            failed[key] = set()
        elif event["kind"] == "transfer.phase" and event.get("phase") == "attempt_failed":
            failed.setdefault(key, set()).add(int(event.get("attempt") or 0))
        elif event["kind"] == "transfer.aborted":
            attempts = failed.pop(key, set())
            if not str(event.get("reason") or "").startswith(GAVE_UP_PREFIX):
                continue
            judged += 1
            if len(attempts) < expected:
                early.append({"transfer": key.text(), "time": time_s, "attempts_failed": sorted(attempts),
                              "reason": event.get("reason")})
    details = {"expected_attempts": expected, "gave_up": judged, "early": early}
    if early and outage:
        return CheckResult(NAME, None, f"{len(early)} transfer(s) given up with fewer than {expected} failed "
                                       "attempts seen, but a broker outage may have lost their events", details)
    if early:
        first = early[0]
        return CheckResult(NAME, False, f"{len(early)} transfer(s) given up after fewer than {expected} failed "
                                        f"attempts (first: {first['transfer']}, attempts {first['attempts_failed']})",
                           details)
    return CheckResult(NAME, True, f"{judged} transfer(s) given up, each after {expected} failed attempts", details)
