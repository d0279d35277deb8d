"""Replica placement and collection creation: least-loaded peers first, spread, the replication factor.

Qdrant places `shard_number * replication_factor` replicas over the peers so that no peer holds two replicas
of one shard and the least-loaded peers are chosen first; with fewer peers than the replication factor each
shard gets one replica per peer. A new collection's replicas are Initializing until their nodes confirm
them, then Active (or Dead when a node did not confirm and a sibling did).
"""

from __future__ import annotations

import pytest

from cluster.coordinator import operations
from cluster.coordinator.operations import OperationError
from cluster.coordinator.placement import placement
from cluster.coordinator.state import ClusterState
from tests.cluster.coordinator.states import cluster_state, replicas_of, rules_of


def test_one_shard_goes_to_the_first_peers_when_all_are_empty() -> None:
    assert placement([1, 2, 3], shard_number=1, replication_factor=2) == {0: [1, 2]}


def test_least_loaded_peers_are_chosen_first() -> None:
    assert placement([1, 2, 3], 1, 2, load={1: 5, 2: 0, 3: 1}) == {0: [2, 3]}
    assert placement([1, 2, 3], 2, 1, load={1: 4, 2: 4, 3: 0}) == {0: [3], 1: [3]}


def test_shards_are_spread_over_the_peers() -> None:
    assert placement([1, 2, 3], shard_number=3, replication_factor=1) == {0: [1], 1: [2], 2: [3]}
    assert placement([1, 2, 3], shard_number=3, replication_factor=2) == {0: [1, 2], 1: [3, 2], 2: [3, 1]}


def test_equal_loads_rotate_so_shard_s_prefers_the_s_th_peer() -> None:
    assert placement([1, 2, 3], shard_number=3, replication_factor=1, load={1: 2, 2: 2, 3: 2}) == {
        0: [1], 1: [2], 2: [3]}


@pytest.mark.parametrize(("peers", "shard_number", "replication_factor"),
                         [(3, 4, 2), (4, 4, 2), (5, 3, 3), (2, 7, 1), (6, 5, 4)])
def test_every_shard_has_its_replicas_on_distinct_peers_and_loads_differ_by_at_most_one(
        peers: int, shard_number: int, replication_factor: int) -> None:
    layout = placement(range(1, peers + 1), shard_number, replication_factor)
    assert sorted(layout) == list(range(shard_number))
    for chosen in layout.values():
        assert len(chosen) == len(set(chosen)) == replication_factor
    load = [sum(peer in chosen for chosen in layout.values()) for peer in range(1, peers + 1)]
    assert max(load) - min(load) <= 1, load


def test_more_replicas_than_peers_gives_one_replica_per_peer() -> None:
    assert placement([2, 1], shard_number=2, replication_factor=3) == {0: [1, 2], 1: [2, 1]}


@pytest.mark.parametrize(("peers", "shard_number", "replication_factor"), [([], 1, 1), ([1], 0, 1), ([1], 1, 0)])
def test_placement_refuses_impossible_requests(peers: list[int], shard_number: int,
                                               replication_factor: int) -> None:
    with pytest.raises(ValueError):
        placement(peers, shard_number, replication_factor)


def test_a_new_collection_goes_to_the_peers_that_hold_fewest_replicas_of_any_collection() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}}, name="a")
    operations.collection_create(state, "b", {"shard_number": 2, "replication_factor": 1})
    assert replicas_of(state, "b") == {0: {3: "Initializing"}, 1: {2: "Initializing"}}
    assert rules_of(state) == [(0, 3, None, "Initializing", "collection.create"),
                               (1, 2, None, "Initializing", "collection.create")]
    assert "n3 gets a replica of shard 0 of `b`" in state.decisions[0].explanation


def test_creating_an_existing_collection_or_one_without_peers_is_refused() -> None:
    state = cluster_state({0: {1: "Active"}})
    with pytest.raises(OperationError) as existing:
        operations.collection_create(state, "c", {"shard_number": 1, "replication_factor": 1})
    assert (existing.value.status, existing.value.text()) == (409, "Wrong input: Collection `c` already exists!")
    with pytest.raises(OperationError) as no_peers:
        operations.collection_create(ClusterState(), "c", {"shard_number": 1, "replication_factor": 1})
    assert no_peers.value.status == 500


def test_confirmed_replicas_become_active_and_a_silent_peer_dead_where_a_sibling_confirmed() -> None:
    state = cluster_state({0: {1: "Initializing", 2: "Initializing"}, 1: {2: "Initializing", 3: "Initializing"},
                           2: {3: "Initializing"}})
    operations.collection_activate(state, "c", ready_peers={1, 2})
    assert replicas_of(state) == {0: {1: "Active", 2: "Active"}, 1: {2: "Active", 3: "Dead"}, 2: {3: "Active"}}
    dead = [d for d in state.decisions if d.to == "Dead"]
    assert [(d.shard, d.peer, d.rule) for d in dead] == [(1, 3, "collection.create_failed")]
    assert "automatic recovery will fill it" in dead[0].explanation
