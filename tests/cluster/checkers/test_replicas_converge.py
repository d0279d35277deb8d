"""replicas_converge: Active replicas of a shard agree after healing, unless no_sync allowed divergence."""

from __future__ import annotations

from cluster.checkers.replicas_converge import check, replicas_converge_check
from tests.cluster.checkers.histories import delete, final_replicas, meta, op, point, upsert

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


def differences(ids: list[str] | None, time_s: float = 100.0) -> dict:
    return {"type": "final", "time": time_s, "f": "replica_differences", "value": {"c": {"0": ids}}}


DIVERGED = {("c", 0, 1): ("Active", A), ("c", 0, 2): ("Active", B)}


def test_a_divergence_only_on_points_of_writes_of_unknown_outcome_is_explained() -> None:
    """The node that took an upsert was killed while forwarding it: one replica applied it, the other did
    not, and the client never heard (found by the explorer with no bug planted)."""
    history = [meta(), *upsert(1, [point(7, 1.0), point(8, 2.0)], 1.0, 1.2, completion="info"),
               *delete(2, [9], 1.5, None, completion=None), final_replicas(DIVERGED), differences(["7", "9"])]
    result = check(history)
    assert result.valid is True, result.summary
    assert result.details["divergence_unknown_writes"] == {"c/0": ["7", "9"]}
    assert "outcome is unknown" in result.summary


def test_a_divergence_on_an_acknowledged_or_failed_write_is_not_explained() -> None:
    for completion in ("ok", "fail"):
        history = [meta(), *upsert(1, [point(7, 1.0)], 1.0, 1.2, completion=completion),
                   *upsert(2, [point(8, 1.0)], 1.0, 1.2, completion="info"),
                   final_replicas(DIVERGED), differences(["7", "8"])]
        assert check(history).valid is False, completion


def test_a_divergence_without_the_differences_observation_is_not_explained() -> None:
    history = [meta(), *upsert(1, [point(7, 1.0)], 1.0, 1.2, completion="info"), final_replicas(DIVERGED)]
    assert check(history).valid is False
    unreadable = [meta(), *upsert(1, [point(7, 1.0)], 1.0, 1.2, completion="info"), final_replicas(DIVERGED),
                  differences(None)]
    assert check(unreadable).valid is False
