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
from cluster.coordinator.auto_recovery import AUTOMATIC_REASON
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
def test_a_new_transfer_is_proxifying_and_its_comment_counts_the_stages_seconds() -> None:
    """Qdrant's comment (issue 18 item 3): `<stage> (<seconds>s)`, the seconds since the stage began."""
    transfer = transfer_literal(0, 1, 3)
    assert operations.transfer_comment(transfer, now=0.0) == "proxifying (0.00s)"
    assert operations.transfer_comment(transfer, now=1.5) == "proxifying (1.50s)"


STAGES = [  # phase reported, Qdrant's stage of the source, the target's stage, comment 0.25 s later
    ("queue_installed", "recovering", None, "recovering (0.25s)"),
    ("streaming", "recovering", "downloading", "recovering (1.25s) | downloading (0.25s), 1048576/5242880 bytes (20%)"),
    ("streamed", "recovering", "restoring", "recovering (2.25s) | restoring (0.25s), 5242880/5242880 bytes (100%)"),
    ("restored", "recovering", None, "recovering (3.25s)"),
    ("queued", "waiting consensus", None, "waiting consensus (0.25s)"),
    ("partial", "syncing queued updates", None, "syncing queued updates (0.25s)"),
    ("queue_replayed", "finalizing", None, "finalizing (0.25s)"),
]


def test_the_reported_phases_walk_through_qdrants_stages_each_with_its_own_clock() -> None:
    transfer = transfer_literal(0, 1, 3)
    for second, (phase, stage, recovery, comment) in enumerate(STAGES):
        done = 5242880 if phase == "streamed" else 1048576 if phase == "streaming" else 0
        operations.transfer_progress(transfer, {"phase": phase, "bytes": done, "bytes_total": 5242880}, float(second))
        assert (transfer["stage"], transfer["recovery_stage"]) == (stage, recovery), phase
        assert operations.transfer_comment(transfer, second + 0.25) == comment, phase


def test_a_failed_attempt_keeps_the_stage_and_the_next_attempt_starts_it_again() -> None:
    transfer = transfer_literal(0, 1, 3)
    operations.transfer_progress(transfer, {"phase": "streaming", "bytes": 4096, "bytes_total": None}, 1.0)
    operations.transfer_progress(transfer, {"phase": "attempt_failed", "attempt": 1}, 2.0)
    assert transfer["comment"] == "recovering (1.00s)"  # the target's download ended with the attempt
    operations.transfer_progress(transfer, {"phase": "queue_installed", "attempt": 2}, 4.0)
    assert operations.transfer_comment(transfer, 4.5) == "recovering (0.50s), attempt 2"


def test_comments_are_written_as_of_the_time_a_view_is_made() -> None:
    view = {"transfers": [transfer_literal(0, 1, 3), transfer_literal(1, 2, 3)]}
    view["transfers"][1].update(stage="recovering", stage_started_at=2.0)
    assert [t["comment"] for t in operations.comments_render(view, 3.0)["transfers"]] == [
        "proxifying (3.00s)", "recovering (1.00s)"]


def test_a_partial_report_records_the_fields_and_makes_the_target_partial() -> None:
    state = cluster_state({0: {1: "Active", 3: "Recovery"}}, transfers=[transfer_literal(0, 1, 3)])
    reported = operations.transfer_report(state, KEY, "partial", {"bytes": 10, "bytes_total": 10, "queued": 4}, 5.0)
    assert (reported["phase"], reported["bytes"], reported["queued"]) == ("partial", 10, 4)
    assert reported["comment"] == "syncing queued updates (0.00s)"
    assert replicas_of(state) == {0: {1: "Active", 3: "Partial"}}


def test_a_report_of_a_transfer_that_ended_meanwhile_is_not_found() -> None:
    state = cluster_state({0: {1: "Active", 3: "Active"}})
    with pytest.raises(OperationError) as gone:
        operations.transfer_report(state, KEY, "finish", {}, 0.0)
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
    assert coordinator.state.data["transfers"][0]["comment"] == "recovering (0.00s) | downloading (0.00s), 5 bytes"
    assert rules_published(published) == [("transfer.phase", None)]


async def test_a_report_of_an_unknown_transfer_is_not_found(coordinator: Coordinator,
                                                             published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active"}})
    with pytest.raises(OperationError) as unknown:
        await coordinator.transfers.report("partial", KEY, {}, None)
    assert (unknown.value.status, unknown.value.text()) == (
        404, "Not found: Shard transfer 1 -> 3 for collection c:0 does not exist")
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


async def test_a_users_transfer_replaces_a_recovery_toward_a_peer_that_is_down(coordinator: Coordinator,
                                                                            published: Published) -> None:
    """Issue 18 item 2: an automatic recovery 1 -> 3 whose target went down cannot progress; a user's
    replicate 1 -> 4 of the same shard aborts it (3 stays Dead, recovered later) instead of being refused."""
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active", 3: "Recovery"}}, peers=range(1, 5),
                                      transfers=[transfer_literal(0, 1, 3, reason=AUTOMATIC_REASON)])
    coordinator.healthy = {1, 2, 4}
    coordinator.transfers.kick = kicked = Kicks()  # type: ignore[method-assign]
    await coordinator.transfers.begin("c", {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 4}, sync=True,
                                      reason="user")
    assert replicas_of(coordinator.state) == {0: {1: "Active", 2: "Active", 3: "Dead", 4: "Recovery"}}
    assert transfers_in(coordinator.state) == [("c", 0, 1, 4, True)]
    assert [(t["from"], t["to"]) for t in kicked.transfers] == [(1, 4)]
    aborted = [fields for kind, fields in published if kind == "transfer.aborted"]
    assert aborted[0]["reason"] == "replaced by a user's transfer: it cannot progress while n3 is down"


@pytest.mark.parametrize(("healthy", "running"), [({1, 2, 3, 4}, AUTOMATIC_REASON), ({1, 2, 4}, "user")])
async def test_a_recovery_that_progresses_or_a_users_transfer_still_refuses_a_conflict(
        coordinator: Coordinator, published: Published, healthy: set[int], running: str) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 2: "Active", 3: "Recovery"}}, peers=range(1, 5),
                                      transfers=[transfer_literal(0, 1, 3, reason=running)])
    coordinator.healthy = healthy
    with pytest.raises(OperationError) as refused:
        await coordinator.transfers.begin("c", {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 4}, sync=True,
                                          reason="user")
    assert refused.value.text() == "Bad request: Shard 0 is already involved in transfer 1 -> 3"
    assert transfers_in(coordinator.state) == [("c", 0, 1, 3, True)] and published == []


class Kicks:
    """Stands in for `Transfers.kick` (asking the source node to drive a transfer): records the transfers."""

    def __init__(self) -> None:
        self.transfers: list[dict[str, Any]] = []

    async def __call__(self, transfer: dict[str, Any]) -> None:
        self.transfers.append(transfer)


async def test_removing_a_peer_with_force_publishes_its_aborted_transfers(coordinator: Coordinator,
                                                                       published: Published) -> None:
    coordinator.state = cluster_state({0: {1: "Active", 3: "Recovery"}, 1: {2: "Active", 3: "Active"}},
                                      transfers=[transfer_literal(0, 1, 3)])
    coordinator.healthy = {1, 2, 3}
    await coordinator.peer_remove(3, force=True)
    assert replicas_of(coordinator.state) == {0: {1: "Active"}, 1: {2: "Active"}}
    assert coordinator.state.peer_ids() == [1, 2] and coordinator.healthy == {1, 2}
    assert [fields["reason"] for kind, fields in published if kind == "transfer.aborted"] == [
        "peer 3 removed from the cluster"]
