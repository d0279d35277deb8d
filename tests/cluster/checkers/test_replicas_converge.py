"""replicas_converge: Active replicas of a shard agree after healing, unless no_sync allowed divergence."""

from __future__ import annotations

from cluster.checkers.replicas_converge import check, replicas_converge_check
from tests.cluster.checkers.histories import final_replicas, meta, op

A, B = "a" * 64, "b" * 64


def recover_no_sync(priority: str | None = "no_sync", shard: int | None = 0) -> list[dict]:
    return op(5, "snapshot_recover", {"collection": "c", "shard": shard, "peer": 1, "name": "s1",
                                      "priority": priority, "checksum": None, "source": "location",
                                      "corrupt": False}, 3.0, 3.5)


def test_equal_digests_pass() -> None:
    history = [meta(), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", A)})]
    result = check(history)
    assert result.valid is True
    assert result.details["shards_checked"] == 1


def test_different_digests_fail_and_name_the_shard() -> None:
    history = [meta(), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)})]
    result = check(history)
    assert result.valid is False
    assert result.details["diverged"] == {"c/0": {"1": A, "2": B}}


def test_non_active_replica_is_not_compared() -> None:
    history = [meta(), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Dead", B)})]
    assert check(history).valid is True


def test_no_sync_recovery_allows_divergence_of_its_shard() -> None:
    history = [meta(), *recover_no_sync(),
               final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)})]
    result = check(history)
    assert result.valid is True
    assert "c/0" in result.details["divergence_allowed"]


def test_default_priority_snapshot_does_not_allow_divergence() -> None:
    history = [meta(default_priority="snapshot"), *recover_no_sync(priority=None),
               final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)})]
    assert check(history).valid is False


def test_factory_forbids_or_allows_divergence_explicitly() -> None:
    history = [meta(), *recover_no_sync(shard=None),
               final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)})]
    assert check(history).valid is True
    assert replicas_converge_check(allow_divergence=False)(history).valid is False
    plain = [meta(), final_replicas({("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)})]
    assert replicas_converge_check(allow_divergence=True)(plain).valid is True


def test_without_final_observation_is_unknown() -> None:
    assert check([meta()]).valid is None
