"""`transfer_retries`: a transfer the source gives up on has failed each of its three attempts first."""

from __future__ import annotations

from typing import Any

from cluster.checkers import transfer_retries
from tests.cluster.checkers.histories import meta


def event(time_s: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": "event", "time": time_s, "event": {"kind": kind, "collection": "c", "shard": 0, "from": 1,
                                                       "to": 3, **fields}}


def failed(time_s: float, attempt: int) -> dict[str, Any]:
    return event(time_s, "transfer.phase", phase="attempt_failed", attempt=attempt)


GAVE_UP = "transmission failed after 3 attempts: link down"


def test_a_transfer_given_up_after_three_failed_attempts_holds() -> None:
    history = [meta(), event(1.0, "transfer.started"), failed(1.5, 1), failed(3.0, 2), failed(6.0, 3),
               event(6.1, "transfer.aborted", reason=GAVE_UP)]
    result = transfer_retries.check(history)
    assert result.valid is True and result.details["gave_up"] == 1


def test_a_transfer_given_up_after_two_attempts_is_a_violation() -> None:
    history = [meta(), event(1.0, "transfer.started"), failed(1.5, 1), failed(3.0, 2),
               event(3.1, "transfer.aborted", reason="transmission failed after 2 attempts: link down")]
    result = transfer_retries.check(history)
    assert result.valid is False
    assert result.details["early"][0]["attempts_failed"] == [1, 2]


def test_aborts_for_other_reasons_are_not_judged() -> None:
    history = [meta(), event(1.0, "transfer.started"), failed(1.5, 1),
               event(2.0, "transfer.aborted", reason="aborted by user"),
               event(3.0, "transfer.started"), event(3.5, "transfer.aborted", reason="peer 3 failed an update")]
    result = transfer_retries.check(history)
    assert result.valid is True and result.details["gave_up"] == 0


def test_attempts_count_from_the_transfers_own_start() -> None:
    """Failures of an earlier transfer with the same key do not count for the next one."""
    history = [meta(), event(1.0, "transfer.started"), failed(1.5, 1), failed(3.0, 2), failed(6.0, 3),
               event(6.1, "transfer.aborted", reason=GAVE_UP),
               event(8.0, "transfer.started"), failed(8.5, 3), event(8.6, "transfer.aborted", reason=GAVE_UP)]
    assert transfer_retries.check(history).valid is False


def test_a_broker_outage_makes_missing_failures_unknown() -> None:
    history = [meta(), {"type": "event", "time": 0.5, "event": {"kind": "fault.applied", "fault": "broker_outage"}},
               event(1.0, "transfer.started"), failed(3.0, 2), event(6.1, "transfer.aborted", reason=GAVE_UP)]
    assert transfer_retries.check(history).valid is None
