"""nothing_stuck: after heal and grace no transfer is open and every replica is Active."""

from __future__ import annotations

from cluster.checkers.nothing_stuck import check
from tests.cluster.checkers.histories import event, final_replicas, meta

A = "a" * 64
ALL_ACTIVE = {("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A)}


def transfer(time_s: float, kind: str, **fields: object) -> dict:
    return event(time_s, f"transfer.{kind}", collection="c", shard=0, method="snapshot", sync=True,
                 **{"from": 1, "to": 2}, **fields)


def test_finished_and_aborted_transfers_pass() -> None:
    history = [meta(), transfer(1.0, "started"), transfer(2.0, "finished", bytes=100),
               transfer(3.0, "started"), transfer(4.0, "aborted", reason="cut"), final_replicas(ALL_ACTIVE)]
    assert check(history).valid is True


def test_transfer_still_open_fails() -> None:
    history = [meta(), transfer(1.0, "started"), transfer(2.0, "phase", phase="streaming"),
               final_replicas(ALL_ACTIVE)]
    result = check(history)
    assert result.valid is False
    assert [t["to"] for t in result.details["transfers_open"]] == [2]


def test_transfer_finishing_after_the_final_observation_was_stuck_at_it() -> None:
    history = [meta(), transfer(1.0, "started"), final_replicas(ALL_ACTIVE, time_s=50.0),
               transfer(60.0, "finished")]
    assert check(history).valid is False


def test_replica_not_active_fails() -> None:
    history = [meta(), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Partial", A)})]
    result = check(history)
    assert result.valid is False
    assert result.details["replicas_not_active"] == {"c/0/2": "Partial"}


def test_without_final_observation_is_unknown() -> None:
    assert check([meta(), transfer(1.0, "started")]).valid is None


def outage(time_s: float, kind: str) -> dict:
    return event(time_s, f"fault.{kind}", fault="broker_outage", target="broker", params={})


def test_an_end_event_lost_in_a_broker_outage_is_not_a_stuck_transfer() -> None:
    """The broker took the `finished` event and stopped before delivering it; the target ended Active."""
    history = [meta(), transfer(1.0, "started"), outage(1.5, "applied"), outage(3.0, "healed"),
               final_replicas(ALL_ACTIVE)]
    result = check(history)
    assert result.valid is True
    assert [t["to"] for t in result.details["end_events_maybe_lost"]] == [2]


def test_a_broker_outage_does_not_excuse_a_target_left_in_recovery() -> None:
    history = [meta(), transfer(1.0, "started"), outage(1.5, "applied"), outage(3.0, "healed"),
               final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Recovery", A)})]
    result = check(history)
    assert result.valid is False and [t["to"] for t in result.details["transfers_open"]] == [2]


def test_a_transfer_started_after_the_outage_is_judged_as_usual() -> None:
    history = [meta(), outage(0.5, "applied"), outage(0.8, "healed"), transfer(1.0, "started"),
               final_replicas(ALL_ACTIVE)]
    assert check(history).valid is False
