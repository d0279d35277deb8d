"""no_extra_replicas: no shard ends with more replicas than its replication factor, whatever their states."""

from __future__ import annotations

from cluster.checkers.no_extra_replicas import check
from tests.cluster.checkers.histories import final_replicas, meta, replica_state

A = "a" * 64


def test_a_shard_at_its_factor_passes() -> None:
    history = [meta({"c": (2, 2)}), final_replicas({
        ("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A),
        ("c", 1, 2): ("Active", A), ("c", 1, 3): ("Dead", A)})]
    result = check(history)
    assert result.valid is True
    assert result.details["shards_checked"] == 2


def test_a_removed_move_target_that_came_back_fails() -> None:
    history = [meta({"c": (1, 2)}), final_replicas({
        ("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A), ("c", 0, 3): ("Active", A)})]
    result = check(history)
    assert result.valid is False
    assert result.details["over_replicated"] == {"c/0": {"replicas": {"1": "Active", "2": "Active", "3": "Active"},
                                                         "replication_factor": 2,
                                                         "created_by_recovery": []}}


def test_a_replica_a_collection_recovery_created_is_not_extra() -> None:
    """As in Qdrant, recovering a collection snapshot on a peer without a replica of a shard the snapshot
    holds creates one: the user asked for it (found by the explorer: a false violation before)."""
    replicas = {("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A), ("c", 0, 3): ("Active", A)}
    created = replica_state(5.0, "c", 0, 3, "ManualRecovery", None, rule="recovery.begin")
    assert check([meta({"c": (1, 2)}), created, final_replicas(replicas)]).valid is True
    # the same replica created otherwise (here: by a transfer) is extra
    moved = replica_state(5.0, "c", 0, 3, "Recovery", None, rule="transfer.start")
    result = check([meta({"c": (1, 2)}), moved, final_replicas(replicas)])
    assert result.valid is False and result.details["over_replicated"]["c/0"]["created_by_recovery"] == []


def test_an_extra_dead_replica_counts_too() -> None:
    history = [meta({"c": (1, 1)}), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 3): ("Dead", A)})]
    assert check(history).valid is False


def test_without_final_observation_is_unknown() -> None:
    assert check([meta()]).valid is None
