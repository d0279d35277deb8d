"""Transfers, dropped and failed replicas as the coordinator's pure operations apply them (Qdrant's rules).

Reference (docs/cluster.md sections 3-4): a transfer needs an Active source, and no other transfer of the
shard may touch either peer (the target may already hold a replica, in any state: Qdrant re-syncs it); its target enters Recovery,
becomes Partial once restored, and Active when it finishes, when a move also drops its source. An abort
makes a replicate target Dead (automatic recovery re-syncs it) and removes a move target; the source keeps
its replica. A refused operation raises Qdrant's error and changes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cluster.coordinator import operations
from cluster.coordinator.operations import OperationError
from cluster.coordinator.state import ClusterState
from tests.cluster.coordinator.states import (
    cluster_state,
    replicas_of,
    rules_of,
    transfer_literal,
    transfers_in,
)


def transfer_of(shard: int, source: int, target: int, method: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}
    if method is not None:
        operation["method"] = method
    return operation


def refusal(state: ClusterState, call: Any) -> tuple[int, str]:
    """Run a refused operation; return its status and Qdrant's sentence, after checking nothing changed."""
    before = copy.deepcopy(state.data)
    with pytest.raises(OperationError) as refused:
        call()
    assert state.data == before
    assert state.decisions == []
    return refused.value.status, refused.value.text()


# -- start ----------------------------------------------------------------------------------------------------
def test_replicate_puts_the_target_in_recovery_and_registers_a_sync_snapshot_transfer() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    transfer = operations.transfer_start(state, "c", transfer_of(0, 1, 3), sync=True)
    assert replicas_of(state) == {0: {1: "Active", 2: "Active", 3: "Recovery"}}
    assert transfers_in(state) == [("c", 0, 1, 3, True)]
    assert {k: transfer[k] for k in ("method", "phase", "attempt", "reason")} == {
        "method": "snapshot", "phase": "started", "attempt": 1, "reason": "user"}
    assert rules_of(state) == [(0, 3, None, "Recovery", "transfer.start")]
    assert state.decisions[0].explanation == ("n3's replica of shard 0 enters Recovery: it will receive a "
                                              "snapshot streamed from n1 (replicate, user)")


def test_move_registers_a_transfer_that_is_not_sync() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    operations.transfer_start(state, "c", transfer_of(0, 2, 3, method="snapshot"), sync=False)
    assert replicas_of(state) == {0: {1: "Active", 2: "Active", 3: "Recovery"}}
    assert transfers_in(state) == [("c", 0, 2, 3, False)]
    assert "(move, user)" in state.decisions[0].explanation


@pytest.mark.parametrize("target_state", ["Dead", "ManualRecovery"])
def test_a_replica_that_takes_no_updates_can_be_a_target(target_state: str) -> None:
    state = cluster_state({0: {1: "Active", 3: target_state}})
    operations.transfer_start(state, "c", transfer_of(0, 1, 3), sync=True)
    assert rules_of(state) == [(0, 3, target_state, "Recovery", "transfer.start")]


REFUSALS = [  # (shard, from, to, sync, method), status, Qdrant's sentence; the state is REFUSAL_STATE
    ((0, 2, 2, True, None), 422, "Validation error in JSON body: [replicate_shard.to_peer_id: cannot transfer "
                                 "shard to itself, \"to_peer_id\" must be different than 2 in \"from_peer_id\"]"),
    ((0, 2, 2, False, None), 422, "Validation error in JSON body: [move_shard.to_peer_id: cannot transfer shard "
                                  "to itself, \"to_peer_id\" must be different than 2 in \"from_peer_id\"]"),
    ((4, 1, 5, True, None), 400, "Bad request: Shard 4 of c does not exist"),
    ((0, 9, 5, True, None), 400, "Bad request: Peer 9 does not exist"),
    ((0, 1, 9, False, None), 400, "Bad request: Peer 9 does not exist"),
    ((0, 8, 9, False, None), 400, "Bad request: Peer 9 does not exist"),  # Qdrant checks the target first
    ((1, 4, 5, True, None), 400, "Bad request: Shard 1 is not active on peer 4"),  # Dead source
    ((1, 1, 5, True, None), 400, "Bad request: Shard 1 is not active on peer 1"),  # no replica there
    ((0, 3, 5, True, None), 400, "Bad request: Shard 0 is not active on peer 3"),  # a Recovery target
    ((0, 2, 3, True, None), 400, "Bad request: Shard 0 is already involved in transfer 1 -> 3"),  # the target
    ((0, 1, 4, False, None), 400, "Bad request: Shard 0 is already involved in transfer 1 -> 3"),  # the source
    ((1, 2, 4, True, "stream_records"), 400, "Bad request: Transfer method `stream_records` is not supported by "
                                             "shardsim: use `snapshot`"),
]


def refusal_state() -> ClusterState:
    return cluster_state({0: {1: "Active", 2: "Active", 3: "Recovery"}, 1: {2: "Active", 4: "Dead", 5: "Active"}},
                         peers=range(1, 6), transfers=[transfer_literal(0, 1, 3)])


@pytest.mark.parametrize(("request_", "status", "message"), REFUSALS, ids=[m for _, _, m in REFUSALS])
def test_transfer_start_refuses_with_qdrants_status_and_words(request_: tuple[int, int, int, bool, str | None],
                                                              status: int, message: str) -> None:
    shard, source, target, sync, method = request_
    state = refusal_state()
    assert refusal(state, lambda: operations.transfer_start(
        state, "c", transfer_of(shard, source, target, method), sync)) == (status, message)


@pytest.mark.parametrize("target_state", ["Active", "Partial", "Initializing", "Listener"])
@pytest.mark.parametrize("sync", [True, False])
def test_a_target_that_already_holds_a_replica_is_re_synced(target_state: str, sync: bool) -> None:
    """Qdrant accepts a transfer to a peer that holds a replica of the shard (its consensus test replicates
    twice to the same peer): the replica enters Recovery and is overwritten by the source's snapshot."""
    state = cluster_state({0: {1: "Active", 2: target_state}})
    operations.transfer_start(state, "c", transfer_of(0, 1, 2), sync=sync)
    assert replicas_of(state) == {0: {1: "Active", 2: "Recovery"}}
    assert transfers_in(state) == [("c", 0, 1, 2, sync)]


def test_an_unknown_collection_is_not_found() -> None:
    state = cluster_state({0: {1: "Active"}})
    assert refusal(state, lambda: operations.transfer_start(state, "nowhere", transfer_of(0, 1, 2), True)) == (
        404, "Not found: Collection `nowhere` doesn't exist!")


def test_transfers_of_one_shard_between_other_peers_or_of_another_shard_may_run_together() -> None:
    state = refusal_state()
    operations.transfer_start(state, "c", transfer_of(0, 2, 4), sync=True)
    operations.transfer_start(state, "c", transfer_of(1, 2, 1), sync=True)
    assert transfers_in(state) == [("c", 0, 1, 3, True), ("c", 0, 2, 4, True), ("c", 1, 2, 1, True)]


# -- partial, finish ------------------------------------------------------------------------------------------
def test_a_restored_target_becomes_partial() -> None:
    state = cluster_state({0: {1: "Active", 3: "Recovery"}}, transfers=[transfer_literal(0, 1, 3)])
    operations.transfer_partial(state, state.data["transfers"][0], 0.0)
    assert replicas_of(state) == {0: {1: "Active", 3: "Partial"}}
    assert state.data["transfers"][0]["phase"] == "partial"
    assert rules_of(state) == [(0, 3, "Recovery", "Partial", "transfer.recovered")]


def test_a_finished_replicate_keeps_its_source() -> None:
    state = cluster_state({0: {1: "Active", 3: "Partial"}}, transfers=[transfer_literal(0, 1, 3, sync=True)])
    operations.transfer_finish(state, state.data["transfers"][0])
    assert replicas_of(state) == {0: {1: "Active", 3: "Active"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, "Partial", "Active", "transfer.finished")]


def test_a_finished_move_drops_its_source() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Partial"}},
                          transfers=[transfer_literal(0, 1, 3, sync=False)])
    operations.transfer_finish(state, state.data["transfers"][0])
    assert replicas_of(state) == {0: {2: "Active", 3: "Active"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, "Partial", "Active", "transfer.finished"),
                               (0, 1, "Active", None, "transfer.move_source_dropped")]
    assert state.decisions[1].explanation == "shard 0 moved to n3: the source replica on n1 is removed"


# -- abort ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target_state", ["Recovery", "Partial"])
def test_an_aborted_replicate_leaves_its_target_dead_and_its_source_active(target_state: str) -> None:
    state = cluster_state({0: {1: "Active", 3: target_state}}, transfers=[transfer_literal(0, 1, 3, sync=True)])
    operations.transfer_abort(state, state.data["transfers"][0], "transmission failed")
    assert replicas_of(state) == {0: {1: "Active", 3: "Dead"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, target_state, "Dead", "transfer.aborted.sync_target_dead")]
    assert "aborted (transmission failed)" in state.decisions[0].explanation


@pytest.mark.parametrize("target_state", ["Recovery", "Partial"])
def test_an_aborted_move_removes_its_target_and_keeps_its_source(target_state: str) -> None:
    state = cluster_state({0: {1: "Active", 3: target_state}}, transfers=[transfer_literal(0, 1, 3, sync=False)])
    operations.transfer_abort(state, state.data["transfers"][0], "aborted by user")
    assert replicas_of(state) == {0: {1: "Active"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, target_state, None, "transfer.aborted.move_target_removed")]
    assert "the source keeps the shard" in state.decisions[0].explanation


def test_aborting_a_transfer_of_a_deleted_collection_only_forgets_it() -> None:
    state = cluster_state({0: {1: "Active"}}, transfers=[transfer_literal(0, 1, 3, name="gone")])
    operations.transfer_abort(state, state.data["transfers"][0], "peer restarted")
    assert transfers_in(state) == []
    assert rules_of(state) == []


def test_a_transfer_that_does_not_exist_is_not_found() -> None:
    state = cluster_state({0: {1: "Active"}}, transfers=[transfer_literal(0, 1, 2)])
    assert refusal(state, lambda: operations.transfer_get(state, "c", 0, 1, 3)) == (
        404, "Not found: Shard transfer 1 -> 3 for collection c:0 does not exist")
    assert operations.transfer_get(state, "c", 0, 1, 2) is state.data["transfers"][0]


# -- drop_replica ---------------------------------------------------------------------------------------------
def test_drop_replica_removes_it() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    operations.replica_drop(state, "c", {"shard_id": 0, "peer_id": 2})
    assert replicas_of(state) == {0: {1: "Active"}}
    assert rules_of(state) == [(0, 2, "Active", None, "replica.dropped")]


@pytest.mark.parametrize(("shards", "peer", "message"), [
    ({0: {1: "Active", 2: "Active"}}, 3, "Bad request: Peer 3 has no replica of shard 0"),
    ({0: {1: "Active", 2: "Dead"}}, 1, "Bad request: Shard 0 must have at least one active replica after "
                                       "removing 1"),
    ({0: {2: "Dead"}}, 2, "Bad request: Shard 0 must have at least one active replica after removing 2"),
    ({0: {1: "Active"}}, 9, "Bad request: Peer 9 does not exist"),
])
def test_drop_replica_refuses_a_missing_replica_and_the_last_active_one(shards: dict[int, dict[int, str]],
                                                                        peer: int, message: str) -> None:
    state = cluster_state(shards)
    assert refusal(state, lambda: operations.replica_drop(state, "c", {"shard_id": 0, "peer_id": peer})) == (
        400, message)


def test_dropping_a_dead_replica_beside_the_only_active_one_is_allowed() -> None:
    state = cluster_state({0: {1: "Active", 2: "Dead"}})
    operations.replica_drop(state, "c", {"shard_id": 0, "peer_id": 2})
    assert replicas_of(state) == {0: {1: "Active"}}


def test_dropping_a_replica_aborts_the_transfers_it_takes_part_in() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Partial"}},
                          transfers=[transfer_literal(0, 1, 3, sync=False)])
    operations.replica_drop(state, "c", {"shard_id": 0, "peer_id": 1})
    assert replicas_of(state) == {0: {2: "Active"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, "Partial", None, "transfer.aborted.move_target_removed"),
                               (0, 1, "Active", None, "replica.dropped")]


# -- a forwarded update failed --------------------------------------------------------------------------------
def test_a_replica_that_failed_an_update_becomes_dead() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    assert operations.replica_failed(state, "c", 0, 2, "connection refused", reporter=1)
    assert replicas_of(state) == {0: {1: "Active", 2: "Dead"}}
    assert rules_of(state) == [(0, 2, "Active", "Dead", "replica.update_failed")]
    assert state.decisions[0].explanation == ("n2's replica of shard 0 marked Dead: a forwarded update from n1 "
                                              "failed (connection refused)")


@pytest.mark.parametrize(("shards", "peer"), [
    ({0: {1: "Active", 2: "Dead"}}, 1),  # the last Active replica: nothing could re-sync it
    ({0: {1: "Active", 2: "Active", 3: "Recovery"}}, 3),  # fed by its transfer's queue, not by updates
    ({0: {1: "Active", 3: "ManualRecovery"}}, 3),
    ({0: {1: "Active", 3: "Dead"}}, 3),
    ({0: {1: "Active", 2: "Active"}}, 3),  # no replica on the reported peer
], ids=["last-active", "recovery", "manual-recovery", "dead", "absent"])
def test_a_failure_report_changes_nothing_for_the_last_active_replica_or_one_that_takes_no_updates(
        shards: dict[int, dict[int, str]], peer: int) -> None:
    state = cluster_state(shards)
    before = copy.deepcopy(state.data)
    assert not operations.replica_failed(state, "c", 0, peer, "timeout", reporter=2)
    assert state.data == before and state.decisions == []


def test_a_failed_replicate_target_aborts_its_transfer_and_is_dead() -> None:
    state = cluster_state({0: {1: "Active", 3: "Partial"}}, transfers=[transfer_literal(0, 1, 3, sync=True)])
    assert operations.replica_failed(state, "c", 0, 3, "timeout", reporter=1)
    assert replicas_of(state) == {0: {1: "Active", 3: "Dead"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, "Partial", "Dead", "transfer.aborted.sync_target_dead")]


def test_a_failed_move_target_is_removed_and_stays_removed() -> None:
    """Issue 14, defect 3: the aborted move removed its target; the failure must not bring it back as Dead
    (automatic recovery would then re-sync it and the shard would hold one replica more than its factor)."""
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Partial"}},
                          transfers=[transfer_literal(0, 1, 3, sync=False)])
    assert operations.replica_failed(state, "c", 0, 3, "timeout", reporter=1)
    assert replicas_of(state) == {0: {1: "Active", 2: "Active"}}
    assert transfers_in(state) == []
    assert rules_of(state) == [(0, 3, "Partial", None, "transfer.aborted.move_target_removed")]


def test_a_failed_source_aborts_its_replicate_and_both_are_dead() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Recovery"}},
                          transfers=[transfer_literal(0, 1, 3, sync=True)])
    assert operations.replica_failed(state, "c", 0, 1, "timeout", reporter=2)
    assert replicas_of(state) == {0: {1: "Dead", 2: "Active", 3: "Dead"}}
    assert rules_of(state) == [(0, 3, "Recovery", "Dead", "transfer.aborted.sync_target_dead"),
                               (0, 1, "Active", "Dead", "replica.update_failed")]


# -- removing a peer (DELETE /cluster/peer/{peer_id}) -----------------------------------------------------------
@pytest.mark.parametrize(("peer", "force", "message"), [
    (3, False, "Bad request: Cannot remove peer 3 as there are shards on it"),
    (9, True, "Bad request: Peer 9 does not exist"),
])
def test_a_peer_holding_a_replica_is_not_removed_without_force(peer: int, force: bool, message: str) -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}, 1: {3: "Dead", 2: "Active"}})
    assert refusal(state, lambda: operations.peer_remove(state, peer, force)) == (400, message)


def test_a_peer_without_replicas_is_removed_without_force() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    assert operations.peer_remove(state, 3, force=False) == []
    assert state.peer_ids() == [1, 2] and state.decisions == []


def test_force_drops_every_replica_of_the_peer_even_a_last_one_and_aborts_its_transfers() -> None:
    """Qdrant's force removal moves nothing: the peer's replicas are dropped (a shard whose only replica was
    there has none left) and the transfers it takes part in are aborted by Qdrant's rules."""
    state = cluster_state({0: {1: "Active", 3: "Active"}, 1: {3: "Active"}, 2: {1: "Active", 2: "Recovery"}},
                          transfers=[transfer_literal(2, 3, 2, sync=False), transfer_literal(0, 1, 2)],
                          more={"d": {0: {3: "Dead", 2: "Active"}}})
    aborted = operations.peer_remove(state, 3, force=True)
    assert [(t["shard_id"], t["from"], t["to"]) for t in aborted] == [(2, 3, 2)]
    assert replicas_of(state) == {0: {1: "Active"}, 1: {}, 2: {1: "Active"}}
    assert replicas_of(state, "d") == {0: {2: "Active"}}
    assert transfers_in(state) == [("c", 0, 1, 2, True)]
    assert state.peer_ids() == [1, 2]
    assert [(shard, peer, rule) for shard, peer, _, _, rule in rules_of(state)] == [
        (2, 2, "transfer.aborted.move_target_removed"), (0, 3, "peer.removed"), (1, 3, "peer.removed"),
        (0, 3, "peer.removed")]


# -- payload indexes ------------------------------------------------------------------------------------------
def test_a_payload_index_is_recorded_in_the_config_every_node_applies() -> None:
    state = cluster_state({0: {1: "Active"}})
    operations.payload_index_set(state, "c", "city", "keyword")
    operations.payload_index_set(state, "c", "count", {"type": "integer", "range": True})
    assert state.data["collections"]["c"]["config"]["payload_schema"] == {
        "city": "keyword", "count": {"type": "integer", "range": True}}
    operations.payload_index_set(state, "c", "city", None)
    operations.payload_index_set(state, "c", "never", None)
    assert state.data["collections"]["c"]["config"]["payload_schema"] == {"count": {"type": "integer", "range": True}}
    assert refusal(state, lambda: operations.payload_index_set(state, "gone", "city", "keyword")) == (
        404, "Not found: Collection `gone` doesn't exist!")
