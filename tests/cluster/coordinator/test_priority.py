"""The priority rules of snapshot recovery (docs/cluster.md section 5, Qdrant's SnapshotPriority).

After peer P restored a snapshot, the other Active replicas of the shard decide what follows. With none, P is
Active whatever the priority. Otherwise, for a shard snapshot: `no_sync` P Active, others untouched;
`snapshot` P Active and every other Active replica Dead (re-synced from P); `replica` P Dead (re-synced from
the others). For a collection snapshot P's replicas wait in ManualRecovery; `snapshot` removes the first
`max(0, n_others - (replication_factor - 1))` others and marks the rest Dead; `replica` starts a replicate
transfer from the first other Active replica to P.
"""

from __future__ import annotations

import pytest

from cluster.coordinator import priority
from cluster.coordinator.auto_recovery import recovery_candidates
from tests.cluster.coordinator.states import (
    cluster_state,
    replicas_of,
    rules_of,
    transfer_literal,
    transfers_in,
)

PRIORITIES = ["no_sync", "snapshot", "replica"]
P = 1  # the recovering peer in every test


# -- shard recovery -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chosen", PRIORITIES)
def test_shard_with_no_other_active_replica_becomes_active_whatever_the_priority(chosen: str) -> None:
    state = cluster_state({0: {P: "Dead", 2: "Dead", 3: "Partial"}})
    priority.shard_recovered(state, "c", 0, P, chosen)
    assert replicas_of(state) == {0: {P: "Active", 2: "Dead", 3: "Partial"}}
    assert rules_of(state) == [(0, P, "Dead", "Active", "priority.no_other_active")]
    assert "no other Active replica of shard 0" in state.decisions[0].explanation


def test_shard_no_sync_makes_p_active_and_leaves_the_others_untouched() -> None:
    state = cluster_state({0: {P: "Dead", 2: "Active", 3: "Active"}})
    priority.shard_recovered(state, "c", 0, P, "no_sync")
    assert replicas_of(state) == {0: {P: "Active", 2: "Active", 3: "Active"}}
    assert rules_of(state) == [(0, P, "Dead", "Active", "priority.no_sync")]


def test_shard_snapshot_makes_every_other_active_replica_dead_and_removes_none() -> None:
    state = cluster_state({0: {P: "Active", 2: "Active", 3: "Active"}}, replication_factor=2)
    priority.shard_recovered(state, "c", 0, P, "snapshot")
    assert replicas_of(state) == {0: {P: "Active", 2: "Dead", 3: "Dead"}}
    assert rules_of(state) == [(0, 2, "Active", "Dead", "priority.snapshot.others_dead"),
                               (0, 3, "Active", "Dead", "priority.snapshot.others_dead")]
    assert "re-synced from n1" in state.decisions[0].explanation


def test_shard_snapshot_spreads_p_by_automatic_recovery() -> None:
    state = cluster_state({0: {P: "Active", 2: "Active"}})
    priority.shard_recovered(state, "c", 0, P, "snapshot")
    assert recovery_candidates(state, healthy={1, 2, 3}, not_before={}, now=0.0) == [("c", 0, P, 2)]


def test_shard_replica_marks_p_dead_so_the_existing_replicas_win() -> None:
    state = cluster_state({0: {P: "Active", 2: "Active"}})
    priority.shard_recovered(state, "c", 0, P, "replica")
    assert replicas_of(state) == {0: {P: "Dead", 2: "Active"}}
    assert rules_of(state) == [(0, P, "Active", "Dead", "priority.replica")]
    assert "the existing replicas of shard 0 win" in state.decisions[0].explanation


def test_shard_replica_into_a_new_empty_collection_leaves_it_empty() -> None:
    """The documented gotcha: P is re-synced from the fresh, empty replica, so the snapshot's data is lost."""
    state = cluster_state({0: {P: "Active", 2: "Active"}})
    priority.shard_recovered(state, "c", 0, P, "replica")
    assert recovery_candidates(state, healthy={1, 2, 3}, not_before={}, now=0.0) == [("c", 0, 2, P)]


# -- collection recovery --------------------------------------------------------------------------------------
def test_collection_recovery_begins_with_p_in_manual_recovery_and_can_put_the_states_back() -> None:
    state = cluster_state({0: {P: "Active", 2: "Active"}, 1: {2: "Active", 3: "Active"}, 2: {P: "Dead"}})
    previous = priority.recovery_begin(state, "c", [0, 1, 2], P)
    assert previous == {0: "Active", 2: "Dead"}
    assert replicas_of(state) == {0: {P: "ManualRecovery", 2: "Active"}, 1: {2: "Active", 3: "Active"},
                                  2: {P: "ManualRecovery"}}
    assert [rule for *_, rule in rules_of(state)] == ["recovery.begin", "recovery.begin"]
    state.decisions.clear()
    state.replica_set("c", 2, P, "Dead", "test", "meanwhile a transfer aborted")
    state.decisions.clear()
    priority.recovery_restore(state, "c", previous, P, "the download failed")
    assert replicas_of(state) == {0: {P: "Active", 2: "Active"}, 1: {2: "Active", 3: "Active"}, 2: {P: "Dead"}}
    assert rules_of(state) == [(0, P, "ManualRecovery", "Active", "recovery.restore_state")]
    assert state.decisions[0].explanation.endswith("goes back to Active: the download failed")


def test_collection_recovery_creates_replicas_of_the_shards_the_snapshot_holds_and_p_lacks() -> None:
    """As Qdrant: recovering a collection snapshot on a peer without a replica of a shard the snapshot has data
    for creates one there (ManualRecovery, then the priority); an abort removes it again."""
    state = cluster_state({0: {P: "Active", 2: "Active"}, 1: {2: "Active"}, 2: {}})
    previous = priority.recovery_begin(state, "c", [0], P, added=[1, 2])
    assert previous == {0: "Active", 1: None, 2: None}
    assert replicas_of(state) == {0: {P: "ManualRecovery", 2: "Active"}, 1: {P: "ManualRecovery", 2: "Active"},
                                  2: {P: "ManualRecovery"}}
    transfers = priority.recovery_finish(state, "c", P, [1, 2], previous, "snapshot", "collection")
    assert transfers == []
    assert replicas_of(state) == {0: {P: "Active", 2: "Active"}, 1: {P: "Active", 2: "Dead"}, 2: {P: "Active"}}
    state.decisions.clear()
    state = cluster_state({0: {2: "Active"}})
    previous = priority.recovery_begin(state, "c", [], P, added=[0])
    priority.recovery_restore(state, "c", previous, P, "the snapshot is corrupt")
    assert replicas_of(state) == {0: {2: "Active"}}
    assert state.decisions[-1].explanation.endswith("is removed again: the snapshot is corrupt")


@pytest.mark.parametrize("chosen", PRIORITIES)
def test_collection_with_no_other_active_replica_becomes_active_whatever_the_priority(chosen: str) -> None:
    state = cluster_state({0: {P: "ManualRecovery", 2: "Dead"}})
    assert priority.collection_shard_recovered(state, "c", 0, P, chosen) is None
    assert replicas_of(state) == {0: {P: "Active", 2: "Dead"}}
    assert rules_of(state) == [(0, P, "ManualRecovery", "Active", "priority.no_other_active")]
    assert transfers_in(state) == []


def test_collection_no_sync_makes_p_active_and_leaves_the_others_untouched() -> None:
    state = cluster_state({0: {P: "ManualRecovery", 2: "Active"}})
    assert priority.collection_shard_recovered(state, "c", 0, P, "no_sync") is None
    assert replicas_of(state) == {0: {P: "Active", 2: "Active"}}
    assert rules_of(state) == [(0, P, "ManualRecovery", "Active", "priority.no_sync")]


@pytest.mark.parametrize(("replication_factor", "expected"), [
    (1, {P: "Active"}),  # two others beyond a factor of 1: both removed
    (2, {P: "Active", 3: "Dead"}),  # one removed, the rest Dead
    (3, {P: "Active", 2: "Dead", 3: "Dead"}),  # none beyond the factor: all Dead
    (4, {P: "Active", 2: "Dead", 3: "Dead"}),
])
def test_collection_snapshot_removes_the_replicas_beyond_the_replication_factor_and_kills_the_rest(
        replication_factor: int, expected: dict[int, str]) -> None:
    state = cluster_state({0: {P: "ManualRecovery", 2: "Active", 3: "Active", 4: "Dead"}}, peers=range(1, 5),
                          replication_factor=replication_factor)
    assert priority.collection_shard_recovered(state, "c", 0, P, "snapshot") is None
    assert replicas_of(state) == {0: {**expected, 4: "Dead"}}
    removed = [peer for _, peer, _, to, rule in rules_of(state) if to is None]
    assert removed == [peer for peer in (2, 3) if peer not in expected]
    assert rules_of(state)[0] == (0, P, "ManualRecovery", "Active", "priority.snapshot")
    for decision in state.decisions[1:]:
        assert decision.rule == ("priority.snapshot.remove_extra" if decision.to is None
                                 else "priority.snapshot.others_dead")
    if removed:
        assert (f"removed to keep the replication factor {replication_factor}"
                in state.decisions[1].explanation)


def test_collection_replica_re_syncs_p_from_the_first_other_active_replica() -> None:
    state = cluster_state({0: {P: "ManualRecovery", 2: "Dead", 3: "Active", 4: "Active"}}, peers=range(1, 5))
    transfer = priority.collection_shard_recovered(state, "c", 0, P, "replica")
    assert transfer is not None
    assert transfers_in(state) == [("c", 0, 3, P, True)]
    assert transfer["reason"] == "priority=replica: the existing replicas win, n1 is re-synced from n3"
    # the transfer has started, so P is its Recovery target (Qdrant: snapshot transfer start -> Recovery)
    assert replicas_of(state) == {0: {P: "Recovery", 2: "Dead", 3: "Active", 4: "Active"}}
    assert rules_of(state) == [(0, P, "ManualRecovery", "Recovery", "transfer.start")]


def test_collection_replica_into_a_new_empty_collection_copies_the_empty_replica() -> None:
    """The documented gotcha for collections: the fresh, empty Active replica is the transfer's source."""
    state = cluster_state({0: {P: "ManualRecovery", 2: "Active"}})
    priority.collection_shard_recovered(state, "c", 0, P, "replica")
    assert transfers_in(state) == [("c", 0, 2, P, True)]


def test_a_replica_marked_dead_by_a_priority_first_aborts_its_transfers() -> None:
    """As Qdrant's `set_shard_replica_state(Dead)`: a recovery with priority replica on P while P is the target
    of a re-sync (concurrent recoveries) aborts that transfer, so its later finish cannot make P Active with
    data the rules did not choose; P stays Dead and is re-synced again."""
    state = cluster_state({0: {P: "Partial", 2: "Active"}}, transfers=[transfer_literal(0, 2, P)])
    priority.shard_recovered(state, "c", 0, P, "replica")
    assert transfers_in(state) == []
    assert replicas_of(state) == {0: {P: "Dead", 2: "Active"}}
    assert [rule for *_, rule in rules_of(state)] == ["priority.replica"]
    state = cluster_state({0: {P: "Active", 2: "Active", 3: "Recovery"}},
                          transfers=[transfer_literal(0, 2, 3, sync=False)])
    priority.shard_recovered(state, "c", 0, P, "snapshot")
    assert transfers_in(state) == []
    assert replicas_of(state) == {0: {P: "Active", 2: "Dead"}}  # the move's target is removed by its abort
    assert [(peer, rule) for _, peer, _, _, rule in rules_of(state)] == [
        (2, "priority.snapshot.others_dead"), (3, "transfer.aborted.move_target_removed")]
