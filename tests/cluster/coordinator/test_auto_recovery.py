"""Automatic recovery: which Dead replicas are re-synced now, from which Active replica, within the limits.

Qdrant (docs/qdrant-semantics.md section 4): only a Dead replica is auto-recovered, by a replicate transfer from an Active
replica; a source that fails its health check is skipped; each peer takes part in at most
`incoming_transfers_limit` incoming and `outgoing_transfers_limit` outgoing transfers (default 1 each, 0
turns automatic recovery off). A replica whose last transfer was aborted waits for its backoff to pass.
"""

from __future__ import annotations

import pytest

from cluster.coordinator.auto_recovery import (
    AUTOMATIC_REASON,
    peers_healthy,
    recoveries_stalled,
    recovery_candidates,
)
from tests.cluster.coordinator.states import cluster_state, transfer_literal

ALL = {1, 2, 3, 4, 5}


def test_a_dead_replica_is_re_synced_from_the_first_active_replica() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Dead"}})
    assert recovery_candidates(state, ALL, {}, now=0.0) == [("c", 0, 1, 3)]


@pytest.mark.parametrize("target_state", ["Partial", "Recovery", "ManualRecovery", "Initializing", "Listener"])
def test_only_dead_replicas_are_recovered(target_state: str) -> None:
    state = cluster_state({0: {1: "Active", 3: target_state}})
    assert recovery_candidates(state, ALL, {}, now=0.0) == []


def test_an_unhealthy_target_waits_and_an_unhealthy_source_is_skipped() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Dead"}})
    assert recovery_candidates(state, {1, 2}, {}, now=0.0) == []
    assert recovery_candidates(state, {2, 3}, {}, now=0.0) == [("c", 0, 2, 3)]
    assert recovery_candidates(state, {3}, {}, now=0.0) == []


def test_no_active_source_means_no_recovery() -> None:
    state = cluster_state({0: {1: "Dead", 2: "Partial", 3: "Dead"}})
    assert recovery_candidates(state, ALL, {}, now=0.0) == []


def test_a_replica_in_its_backoff_waits_until_it_has_passed() -> None:
    state = cluster_state({0: {1: "Active", 3: "Dead"}})
    not_before = {("c", 0, 3): 10.0}
    assert recovery_candidates(state, ALL, not_before, now=9.9) == []
    assert recovery_candidates(state, ALL, not_before, now=10.0) == [("c", 0, 1, 3)]
    assert recovery_candidates(state, ALL, {("c", 0, 2): 10.0}, now=0.0) == [("c", 0, 1, 3)]


def test_each_peer_has_at_most_one_incoming_and_one_outgoing_transfer_by_default() -> None:
    state = cluster_state({0: {1: "Active", 3: "Dead"}, 1: {1: "Active", 2: "Active", 4: "Dead"},
                           2: {2: "Active", 3: "Dead"}, 3: {2: "Active", 5: "Dead"}}, peers=range(1, 6))
    # shard 0: 1 -> 3; shard 1: 1 is busy sending, so 2 -> 4; shard 2: 3 already receives; shard 3: 2 is busy
    assert recovery_candidates(state, ALL, {}, now=0.0) == [("c", 0, 1, 3), ("c", 1, 2, 4)]


def test_the_limits_count_the_transfers_already_running() -> None:
    running = [transfer_literal(0, 1, 2), transfer_literal(1, 4, 3, name="d")]
    state = cluster_state({0: {1: "Active", 2: "Recovery"}, 1: {1: "Active", 4: "Dead"}, 2: {5: "Active", 3: "Dead"}},
                          peers=range(1, 6), transfers=running,
                          more={"d": {0: {4: "Active", 3: "Recovery"}}})
    # peer 1 already sends to 2, peer 3 already receives from 4: neither Dead replica can start now
    assert recovery_candidates(state, ALL, {}, now=0.0) == []


def test_a_peer_in_a_transfer_of_the_same_shard_is_not_used_again() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active", 3: "Recovery", 4: "Dead"}}, peers=range(1, 5),
                          transfers=[transfer_literal(0, 1, 3)], outgoing_transfers_limit=2,
                          incoming_transfers_limit=2)
    assert recovery_candidates(state, ALL, {}, now=0.0) == [("c", 0, 2, 4)]


def test_higher_limits_let_a_peer_feed_several_replicas_at_once() -> None:
    state = cluster_state({0: {1: "Active", 3: "Dead"}, 1: {1: "Active", 4: "Dead"}, 2: {1: "Active", 5: "Dead"}},
                          peers=range(1, 6), outgoing_transfers_limit=2)
    assert recovery_candidates(state, ALL, {}, now=0.0) == [("c", 0, 1, 3), ("c", 1, 1, 4)]


@pytest.mark.parametrize("limits", [{"incoming_transfers_limit": 0}, {"outgoing_transfers_limit": 0}])
def test_a_limit_of_zero_turns_automatic_recovery_off(limits: dict[str, int]) -> None:
    state = cluster_state({0: {1: "Active", 3: "Dead"}}, **limits)
    assert recovery_candidates(state, ALL, {}, now=0.0) == []


def test_collections_by_name_and_shards_by_number_come_first_when_peers_are_scarce() -> None:
    state = cluster_state({10: {3: "Active", 2: "Dead"}, 2: {3: "Active", 4: "Dead"}}, peers=range(1, 6),
                          name="b", more={"a": {0: {5: "Active", 1: "Dead"}}})
    assert recovery_candidates(state, ALL, {}, now=0.0) == [("a", 0, 5, 1), ("b", 2, 3, 4)]


def test_a_peer_that_failed_an_update_is_healthy_only_after_a_check_that_started_later() -> None:
    """Issue 18 item 2 (a Dead replica is re-synced only once its peer is up): a health round that began
    before peer 3 failed an update cannot vouch for it, so no recovery is started toward a peer just killed."""
    ready = {1: True, 2: True, 3: True}
    assert peers_healthy(ready, round_started=10.0, failed_at={}) == {1, 2, 3}
    assert peers_healthy(ready, round_started=10.0, failed_at={3: 10.5}) == {1, 2}
    assert peers_healthy(ready, round_started=11.0, failed_at={3: 10.5}) == {1, 2, 3}
    assert peers_healthy({**ready, 3: False}, round_started=11.0, failed_at={3: 10.5}) == {1, 2}


def test_a_recovery_is_stalled_when_a_peer_of_it_is_down_and_it_involves_a_peer_of_the_new_transfer() -> None:
    """Issue 18 item 2: only automatic recoveries that share a peer with the wanted transfer and have a peer
    that is not healthy are in the way of a user's transfer (they are then aborted, see test_lifecycle)."""
    recovering = transfer_literal(0, 1, 3, reason=AUTOMATIC_REASON)
    other_shard = transfer_literal(1, 1, 3, reason=AUTOMATIC_REASON)
    users = transfer_literal(2, 1, 3)
    state = cluster_state({0: {1: "Active", 3: "Recovery"}, 1: {1: "Active", 3: "Recovery"},
                           2: {1: "Active", 3: "Recovery"}}, peers=range(1, 5),
                          transfers=[recovering, other_shard, users], incoming_transfers_limit=3,
                          outgoing_transfers_limit=3)
    assert recoveries_stalled(state, "c", 0, 1, 4, healthy={1, 2, 4}) == [recovering]
    assert recoveries_stalled(state, "c", 0, 2, 4, healthy={1, 2, 4}) == []  # shares no peer with it
    assert recoveries_stalled(state, "c", 0, 1, 4, healthy={1, 2, 3, 4}) == []  # it can progress
    assert recoveries_stalled(state, "c", 2, 1, 4, healthy={1, 2, 4}) == []  # a user's transfer stays
