"""The transfer and recovery lifecycle as the coordinator records it: the steps a source reports, the events
that explain them, the backoff before automatic recovery retries a replica, and a recovery's finish.

The pure parts are called with literal states; `Transfers` runs inside a real `Coordinator` (SQLite in a
temporary folder, no nodes, no broker) whose published events are collected, so a test sees the events in
the order the coordinator publishes them. Qdrant's retry rule (docs/cluster.md section 4): 3 attempts with
waits of 1 s and 2 s, then abort.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster.coordinator import operations, priority
from cluster.coordinator.engine import Coordinator, CoordinatorSettings
from cluster.coordinator.operations import OperationError
from cluster.coordinator.transfers import event_fields
from tests.cluster.coordinator.states import (
    cluster_state,
    replicas_of,
    rules_of,
    transfer_literal,
    transfers_in,
)

KEY = ("c", 0, 1, 3)


# -- pure: reports, comments, event sentences, a recovery's finish --------------------------------------------
def test_a_progress_report_updates_the_transfer_and_its_comment() -> None:
    transfer = transfer_literal(0, 1, 3)
    operations.transfer_progress(transfer, {"phase": "streaming", "bytes": 1048576, "bytes_total": 5242880})
    assert transfer["comment"] == "attempt 1: streaming, 1048576/5242880 bytes (20%) streamed"
    operations.transfer_progress(transfer, {"phase": "streaming", "bytes": 4096, "bytes_total": None,
                                            "attempt": 2})
    assert transfer["comment"] == "attempt 2: streaming, 4096 bytes streamed"


def test_a_partial_report_records_the_fields_and_makes_the_target_partial() -> None:
    state = cluster_state({0: {1: "Active", 3: "Recovery"}}, transfers=[transfer_literal(0, 1, 3)])
    reported = operations.transfer_report(state, KEY, "partial", {"bytes": 10, "bytes_total": 10, "queued": 4})
    assert (reported["phase"], reported["bytes"], reported["queued"]) == ("partial", 10, 4)
    assert reported["comment"] == "restored on n3; replaying queued updates"
    assert replicas_of(state) == {0: {1: "Active", 3: "Partial"}}


def test_a_report_of_a_transfer_that_ended_meanwhile_is_not_found() -> None:
    state = cluster_state({0: {1: "Active", 3: "Active"}})
    with pytest.raises(OperationError) as gone:
        operations.transfer_report(state, KEY, "finish", {})
    assert (gone.value.status, gone.value.message) == (404, "transfer ended meanwhile")


@pytest.mark.parametrize(("attempt", "then"), [(1, "the source retries in 1 s"), (2, "the source retries in 2 s"),
                                               (3, "no attempt left: the transfer will be aborted")])
def test_a_failed_attempt_says_when_the_source_retries(attempt: int, then: str) -> None:
    state = cluster_state({0: {1: "Active", 3: "Recovery"}})
    transfer = transfer_literal(0, 1, 3, phase="attempt_failed", attempt=attempt)
    fields = event_fields(state, "transfer.phase", transfer, {"reason": "stream stalled"})
    assert fields["rule"] == "transfer.retry"
    assert fields["explanation"] == (f"attempt {attempt} of the transfer of shard 0 from n1 to n3 failed "
                                     f"(stream stalled); {then}")


def test_started_and_aborted_events_name_the_peers_and_the_cause() -> None:
    state = cluster_state({0: {1: "Active", 3: "Recovery"}})
    started = event_fields(state, "transfer.started", transfer_literal(0, 1, 3, sync=False), {})
    assert (started["rule"], started["explanation"]) == (
        "transfer.start", "move shard 0 from n1 to n3 by snapshot streaming (user)")
    aborted = event_fields(state, "transfer.aborted", transfer_literal(0, 1, 3), {"reason": "aborted by user"})
    assert (aborted["rule"], aborted["explanation"], aborted["from"], aborted["to"], aborted["sync"]) == (
        "transfer.aborted", "transfer of shard 0 from n1 to n3 aborted: aborted by user", 1, 3, True)
    assert "rule" not in event_fields(state, "transfer.phase", transfer_literal(0, 1, 3, phase="streaming"), {})


def test_a_recovery_puts_back_the_replicas_the_snapshot_has_no_data_for() -> None:
    state = cluster_state({0: {1: "ManualRecovery", 2: "Active"}, 1: {1: "ManualRecovery"},
                           2: {1: "ManualRecovery", 3: "Active"}})
    transfers = priority.recovery_finish(state, "c", 1, [0, 2], {0: "Active", 1: "Dead", 2: "Active"},
                                         "no_sync", "collection")
    assert transfers == []
    assert replicas_of(state) == {0: {1: "Active", 2: "Active"}, 1: {1: "Dead"}, 2: {1: "Active", 3: "Active"}}
    assert [(shard, rule) for shard, _, _, _, rule in rules_of(state)] == [
        (1, "recovery.restore_state"), (0, "priority.no_sync"), (2, "priority.no_sync")]


def test_a_collection_recovery_with_replica_priority_returns_the_transfers_to_start() -> None:
    state = cluster_state({0: {1: "ManualRecovery", 2: "Active"}, 1: {1: "ManualRecovery", 3: "Active"}})
    transfers = priority.recovery_finish(state, "c", 1, [0, 1], {0: "Active", 1: "Active"}, "replica",
                                         "collection")
    assert [(t["shard_id"], t["from"], t["to"], t["sync"]) for t in transfers] == [(0, 2, 1, True), (1, 3, 1, True)]
    assert transfers_in(state) == [("c", 0, 2, 1, True), ("c", 1, 3, 1, True)]


# -- Transfers inside a coordinator ---------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Published = list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    """A coordinator that is not running: no nodes to push to, no broker; its clock is a `Clock`."""
    made = Coordinator(CoordinatorSettings(db_path=tmp_path / "coordinator.sqlite",
                                           auto_recovery_backoff_s_max=8.0))
    made.transfers.clock = Clock()
    try:
        yield made
    finally:
        made.store.close()


@pytest.fixture
def published(coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch) -> Published:
    """The events the coordinator publishes, in order, as `(kind, fields)`."""
    seen: Published = []
    monkeypatch.setattr(coordinator.events, "publish", lambda kind, **fields: seen.append((kind, fields)))
    return seen


def rules_published(published: Published) -> list[tuple[str, str | None]]:
    return [(kind, fields.get("rule")) for kind, fields in published]


async def test_a_finished_move_publishes_its_replica_changes_then_transfer_finished(
        coordinator: Coordinator, published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active", 3: "Partial"}},
                                      transfers=[transfer_literal(0, 1, 3, sync=False)])
    version = await coordinator.transfers.report("finish", KEY, {"phase": "queue_replayed"}, None)
    assert version == 8
    assert replicas_of(coordinator.state) == {0: {2: "Active", 3: "Active"}}
    assert rules_published(published) == [("replica.state", "transfer.finished"),
                                      ("replica.state", "transfer.move_source_dropped"),
                                      ("transfer.finished", None)]
    assert coordinator.store.load() == coordinator.state.data


async def test_progress_is_published_but_not_committed(coordinator: Coordinator, published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 3: "Recovery"}}, transfers=[transfer_literal(0, 1, 3)])
    version = await coordinator.transfers.report("progress", KEY, {"phase": "streaming", "bytes": 5}, None)
    assert version == coordinator.state.version == 7
    assert coordinator.state.data["transfers"][0]["comment"] == "attempt 1: streaming, 5 bytes streamed"
    assert rules_published(published) == [("transfer.phase", None)]


async def test_a_report_of_an_unknown_transfer_is_not_found(coordinator: Coordinator,
                                                             published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active"}})
    with pytest.raises(OperationError) as unknown:
        await coordinator.transfers.report("partial", KEY, {}, None)
    assert (unknown.value.status, unknown.value.text()) == (
        404, "Not found: Shard transfer 1 -> 3 of shard 0 of collection c does not exist")
    with pytest.raises(OperationError):
        await coordinator.transfers.abort_requested("c", {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 3})
    assert coordinator.state.version == 7 and rules_published(published) == []


async def test_an_abort_reported_by_the_source_kills_the_target_and_starts_its_backoff(
        coordinator: Coordinator, published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 3: "Partial"}}, transfers=[transfer_literal(0, 1, 3)])
    await coordinator.transfers.report("abort", KEY, {}, "transmission failed")
    assert replicas_of(coordinator.state) == {0: {1: "Active", 3: "Dead"}}
    assert rules_published(published) == [("replica.state", "transfer.aborted.sync_target_dead"),
                                      ("transfer.aborted", "transfer.aborted")]
    assert published[-1][1]["reason"] == "transmission failed"
    assert coordinator.transfers.recovery_not_before == {("c", 0, 3): 1001.0}


async def test_the_recovery_backoff_doubles_to_its_max_and_a_finished_transfer_resets_it(
        coordinator: Coordinator) -> None:
    transfers = coordinator.transfers
    waits = []
    for _ in range(5):
        transfers.recovery_backoff("c", 0, 3)
        waits.append(transfers.recovery_not_before[("c", 0, 3)] - 1000.0)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    coordinator.state = cluster_state({0: {1: "Active", 3: "Partial"}}, transfers=[transfer_literal(0, 1, 3)])
    await transfers.report("finish", KEY, {}, None)
    transfers.recovery_backoff("c", 0, 3)
    assert transfers.recovery_not_before[("c", 0, 3)] == 1001.0


async def test_a_failed_move_target_publishes_the_abort_and_stays_removed(coordinator: Coordinator,
                                                                           published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active", 3: "Partial"}},
                                      transfers=[transfer_literal(0, 1, 3, sync=False)])
    changed, version = await coordinator.transfers.replica_failed("c", 0, 3, "timeout", 1)
    assert (changed, version) == (True, 8)
    assert replicas_of(coordinator.state) == {0: {1: "Active", 2: "Active"}}
    assert rules_published(published) == [("replica.state", "transfer.aborted.move_target_removed"),
                                      ("transfer.aborted", "transfer.aborted")]
    assert published[-1][1]["reason"] == "peer 3 failed an update"


async def test_a_failure_report_takes_the_peer_out_of_the_healthy_ones(coordinator: Coordinator,
                                                                      published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active", 3: "Active"}})
    coordinator.healthy = {1, 2, 3}
    await coordinator.transfers.replica_failed("c", 0, 3, "connection refused", 1)
    assert coordinator.healthy == {1, 2}
    assert replicas_of(coordinator.state) == {0: {1: "Active", 2: "Active", 3: "Dead"}}


async def test_a_restarted_peer_aborts_its_transfers(coordinator: Coordinator, published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 3: "Recovery"}, 1: {2: "Active", 1: "Partial"}},
                                      transfers=[transfer_literal(0, 1, 3), transfer_literal(1, 2, 1, sync=False)])
    await coordinator.state_pulled(3, "boot-a", None)
    await coordinator.state_pulled(3, "boot-a", None)
    assert transfers_in(coordinator.state) == [("c", 0, 1, 3, True), ("c", 1, 2, 1, False)]
    await coordinator.state_pulled(3, "boot-b", None)
    assert transfers_in(coordinator.state) == [("c", 1, 2, 1, False)]
    assert replicas_of(coordinator.state) == {0: {1: "Active", 3: "Dead"}, 1: {2: "Active", 1: "Partial"}}
    assert published[-1][1]["reason"] == "Source or target peer restarted (n3)"


async def test_a_recovery_without_a_priority_applies_the_default_one(coordinator: Coordinator) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active"}}, default_priority="snapshot")
    assert await coordinator.recovery_finish("c", 1, [0], {}, None, "shard") == "snapshot"
    assert replicas_of(coordinator.state) == {0: {1: "Active", 2: "Dead"}}


async def test_a_priority_given_with_the_recovery_overrides_the_default(coordinator: Coordinator) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active"}}, default_priority="snapshot")
    assert await coordinator.recovery_finish("c", 1, [0], {}, "replica", "shard") == "replica"
    assert replicas_of(coordinator.state) == {0: {1: "Dead", 2: "Active"}}
