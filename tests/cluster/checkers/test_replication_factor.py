"""replication_factor: every shard ends with at least replication_factor Active replicas."""

from __future__ import annotations

from cluster.checkers.replication_factor import check
from tests.cluster.checkers.histories import final_replicas, meta

A = "a" * 64


def test_every_shard_replicated_pass() -> None:
    history = [meta({"c": (2, 2)}), final_replicas({
        ("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A),
        ("c", 1, 2): ("Active", A), ("c", 1, 3): ("Active", A)})]
    result = check(history)
    assert result.valid is True
    assert result.details["shards_checked"] == 2


def test_dead_or_missing_replicas_fail() -> None:
    history = [meta({"c": (2, 2)}), final_replicas({
        ("c", 0, 1): ("Active", A), ("c", 0, 2): ("Dead", A), ("c", 1, 3): ("Active", A)})]
    result = check(history)
    assert result.valid is False
    assert result.details["under_replicated"] == {"c/0": {"active_peers": ["1"], "required": 2},
                                                  "c/1": {"active_peers": ["3"], "required": 2}}


def test_factor_above_peer_count_is_capped() -> None:
    history = [meta({"c": (1, 3)}, peers=2), final_replicas({("c", 0, 1): ("Active", A),
                                                             ("c", 0, 2): ("Active", A)})]
    assert check(history).valid is True


def test_without_final_observation_is_unknown() -> None:
    assert check([meta()]).valid is None
