"""priority_oracle: the model of the priority rules (docs/qdrant-semantics.md section 3) on 3 peers,
replication factor 2, and the checker.

Shard 0 of collection `c` lives on peers 1 and 2. Three points are written, peer 1 snapshots them (S), then
point 1 is overwritten and point 4 added (the current data, C). Each case recovers the snapshot and states
which peer should end with which data, by which rule.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster.checkers.oracle_model import oracle_predict
from cluster.checkers.priority_oracle import check
from tests.cluster.checkers.histories import (
    ZERO_DIGEST,
    digest,
    final_replicas,
    meta,
    op,
    placement_events,
    point,
    replica_state,
    upsert,
)

BEFORE = [point(1, 1.0, "a"), point(2, 2.0, "a"), point(3, 3.0, "a")]
AFTER = [point(1, 10.0, "b"), point(4, 4.0, "b")]
S = digest(BEFORE)
C = digest([AFTER[0], BEFORE[1], BEFORE[2], AFTER[1]])
CHECKSUM = "ab" * 32


def snapshot_create(op_id: int, collection: str, shard: int | None, peer: int, t0: float) -> list[dict[str, Any]]:
    value = {"collection": collection, "shard": shard, "peer": peer}
    return op(op_id, "snapshot_create", value, t0, t0 + 0.5,
              result={**value, "name": f"{collection}-snap-{op_id}", "checksum": CHECKSUM})


def snapshot_recover(op_id: int, collection: str, shard: int | None, peer: int, priority: str | None,
                     t0: float, completion: str = "ok", name: str = "c-snap-2") -> list[dict[str, Any]]:
    value = {"collection": collection, "shard": shard, "peer": peer, "name": name, "priority": priority,
             "checksum": CHECKSUM, "source": "location", "corrupt": False}
    return op(op_id, "snapshot_recover", value, t0, t0 + 1.0, completion=completion)


def run(variant: str, target: int, priority: str | None, default_priority: str = "replica",
        dead_peer: int | None = None) -> list[dict[str, Any]]:
    """The history up to the recovery: variant `shard` or `collection`, recovered on `target`."""
    shard = 0 if variant == "shard" else None
    records = [meta(default_priority=default_priority), *placement_events({("c", 0): [1, 2]}),
               *upsert(1, BEFORE, 1.0, 1.1), *snapshot_create(2, "c", shard, 1, 2.0), *upsert(3, AFTER, 3.0, 3.1)]
    if dead_peer is not None:
        records.append(replica_state(4.0, "c", 0, dead_peer, "Dead", "Active", rule="update_failed"))
    return [*records, *snapshot_recover(4, "c", shard, target, priority, 5.0)]


def outcome(history: list[dict[str, Any]]) -> dict[int, tuple[str | None, str | None, str]]:
    return {peer: (p.digest, p.state, p.rule) for (_, _, peer), p in oracle_predict(history[0], history).items()}


CASES = [
    # variant, target, priority, default, expected {peer: (digest, state, rule)}
    ("shard", 1, "no_sync", "replica", {1: (S, "Active", "no_sync"), 2: (C, "Active", "initial")}),
    ("shard", 1, "snapshot", "replica", {1: (S, "Active", "snapshot"), 2: (S, "Active", "resynced")}),
    ("shard", 1, "replica", "replica", {1: (C, "Active", "replica"), 2: (C, "Active", "initial")}),
    ("shard", 1, None, "replica", {1: (C, "Active", "replica"), 2: (C, "Active", "initial")}),
    ("shard", 1, None, "snapshot", {1: (S, "Active", "snapshot"), 2: (S, "Active", "resynced")}),
    ("collection", 1, "no_sync", "replica", {1: (S, "Active", "no_sync"), 2: (C, "Active", "initial")}),
    ("collection", 1, "snapshot", "replica", {1: (S, "Active", "snapshot"), 2: (S, "Active", "resynced")}),
    ("collection", 1, "replica", "replica", {1: (C, "Active", "replica"), 2: (C, "Active", "initial")}),
    ("collection", 1, None, "snapshot", {1: (S, "Active", "snapshot"), 2: (S, "Active", "resynced")}),
    ("collection", 3, "snapshot", "replica", {3: (S, "Active", "snapshot"), 1: (None, "Removed", "snapshot_removed"),
                                              2: (S, "Active", "resynced")}),
    ("collection", 3, "no_sync", "replica", {3: (S, "Active", "no_sync"), 1: (C, "Active", "initial"),
                                             2: (C, "Active", "initial")}),
    ("collection", 3, "replica", "replica", {3: (C, "Active", "replica"), 1: (C, "Active", "initial"),
                                             2: (C, "Active", "initial")}),
]


@pytest.mark.parametrize(("variant", "target", "priority", "default", "expected"), CASES,
                         ids=[f"{c[0]}-peer{c[1]}-{c[2]}-default_{c[3]}" for c in CASES])
def test_priority_rules(variant: str, target: int, priority: str | None, default: str,
                        expected: dict[int, tuple[str | None, str, str]]) -> None:
    assert outcome(run(variant, target, priority, default)) == expected


@pytest.mark.parametrize("variant", ["shard", "collection"])
@pytest.mark.parametrize("priority", ["replica", "no_sync", "snapshot"])
def test_no_other_active_replica_means_active_whatever_the_priority(variant: str, priority: str) -> None:
    found = outcome(run(variant, 1, priority, dead_peer=2))
    assert found == {1: (S, "Active", "no_other_active"), 2: (S, "Active", "resynced")}


def test_gotcha_replica_priority_on_a_new_collection_ends_empty() -> None:
    history = [meta({"src": (1, 2), "dst": (1, 2)}),
               *placement_events({("src", 0): [1, 2], ("dst", 0): [1, 2]}),
               *upsert(1, BEFORE, 1.0, 1.1, collection="src"), *snapshot_create(2, "src", None, 1, 2.0),
               *snapshot_recover(3, "dst", None, 1, "replica", 5.0, name="src-snap-2")]
    predictions = oracle_predict(history[0], history)
    assert predictions[("dst", 0, 1)].digest == ZERO_DIGEST
    assert predictions[("dst", 0, 1)].rule == "replica_gotcha"
    assert "snapshot" in predictions[("dst", 0, 1)].explanation
    fixed = [*history[:-2], *snapshot_recover(3, "dst", None, 1, "snapshot", 5.0, name="src-snap-2")]
    assert {k: p.digest for k, p in oracle_predict(fixed[0], fixed).items() if k[0] == "dst"} == {
        ("dst", 0, 1): S, ("dst", 0, 2): S}


def test_failed_recovery_changes_nothing_and_info_recovery_is_unpredictable() -> None:
    failed = [*run("shard", 1, "snapshot")[:-2], *snapshot_recover(4, "c", 0, 1, "snapshot", 5.0, "fail")]
    assert outcome(failed) == {1: (C, "Active", "initial"), 2: (C, "Active", "initial")}
    unknown = [*run("shard", 1, "snapshot")[:-2], *snapshot_recover(4, "c", 0, 1, "snapshot", 5.0, "info")]
    assert {peer: (d, rule) for peer, (d, _, rule) in outcome(unknown).items()} == {
        1: (None, "unknown"), 2: (None, "unknown")}


def test_write_concurrent_with_recovery_makes_the_shard_unpredictable() -> None:
    history = [*run("shard", 1, "snapshot"), *upsert(9, [point(5, 5.0)], 5.5, 5.6)]
    assert {peer: d for peer, (d, _, _) in outcome(history).items()} == {1: None, 2: None}


def test_writes_after_recovery_land_on_every_replica() -> None:
    history = [*run("shard", 1, "no_sync"), *upsert(9, [point(5, 5.0)], 8.0, 8.1)]
    found = outcome(history)
    assert found[1][0] == digest([*BEFORE, point(5, 5.0)])
    assert found[2][0] == digest([AFTER[0], BEFORE[1], BEFORE[2], AFTER[1], point(5, 5.0)])


def test_check_passes_when_the_observation_matches_the_prediction() -> None:
    history = [*run("collection", 3, "snapshot"),
               final_replicas({("c", 0, 3): ("Active", S), ("c", 0, 2): ("Active", S)})]
    result = check(history)
    assert result.valid is True, result.details["mismatches"]


def test_check_fails_and_names_the_rule_that_should_have_fired() -> None:
    history = [*run("collection", 3, "snapshot"),
               final_replicas({("c", 0, 1): ("Active", C), ("c", 0, 2): ("Active", C),
                               ("c", 0, 3): ("Active", C)})]
    result = check(history)
    assert result.valid is False
    mismatches = result.details["mismatches"]
    assert mismatches["c/0/1"]["predicted"]["rule"] == "snapshot_removed"
    assert mismatches["c/0/1"]["problem"] == "predicted removed, still present"
    assert mismatches["c/0/3"]["problem"] == "content digest differs from the prediction"


def test_check_without_final_observation_is_unknown() -> None:
    assert check(run("shard", 1, "replica")).valid is None


def test_a_dead_replica_is_predicted_re_synced_once_its_peer_is_up() -> None:
    """Issue 18 item 2: the re-sync of a Dead replica (its peer down during the recovery) happens after the
    heal, from the replica Active then, and the prediction says so."""
    history = run("shard", 1, "replica", dead_peer=2)
    predictions = oracle_predict(history[0], history)
    assert (predictions[("c", 0, 2)].digest, predictions[("c", 0, 2)].rule) == (S, "resynced")
    assert predictions[("c", 0, 2)].explanation == "Dead, re-synced from peer 1 by automatic recovery once its peer is up"

