"""The cluster state: every replica change is one decision, a commit closes a version, a node's view.

Decisions are what events, reports and the teaching step mode show, so a state change records exactly one,
with its rule and sentence, and an unchanged state records none.
"""

from __future__ import annotations

from cluster.coordinator.state import ClusterState
from tests.cluster.coordinator.states import cluster_state, replicas_of, rules_of, transfer_literal


def test_a_change_records_one_decision_and_no_change_records_none() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    state.replica_set("c", 0, 2, "Dead", "replica.update_failed", "n2 failed")
    state.replica_set("c", 0, 2, "Dead", "replica.update_failed", "n2 failed again")
    state.replica_set("c", 0, 3, None, "replica.dropped", "there is nothing to drop")
    assert rules_of(state) == [(0, 2, "Active", "Dead", "replica.update_failed")]
    assert state.decisions[0].event() == {"collection": "c", "shard": 0, "peer": 2, "from": "Active",
                                          "to": "Dead", "reason": "replica.update_failed",
                                          "rule": "replica.update_failed", "explanation": "n2 failed"}


def test_a_commit_grows_the_version_by_one_and_hands_over_the_decisions() -> None:
    state = cluster_state({0: {1: "Active", 2: "Active"}})
    state.replica_set("c", 0, 1, None, "replica.dropped", "dropped")
    decisions = state.commit()
    assert (state.version, [d.rule for d in decisions], state.decisions) == (8, ["replica.dropped"], [])
    assert replicas_of(state) == {0: {2: "Active"}}


def test_removing_a_collection_forgets_its_transfers_only() -> None:
    state = cluster_state({0: {1: "Active"}}, more={"d": {0: {2: "Active"}}},
                          transfers=[transfer_literal(0, 1, 2), transfer_literal(0, 2, 3, name="d")])
    state.collection_remove("c")
    assert sorted(state.data["collections"]) == ["d"]
    assert [t["collection"] for t in state.data["transfers"]] == ["d"]


def test_a_node_sees_its_peers_at_its_own_proxy_links_and_not_the_links() -> None:
    state = cluster_state({0: {1: "Active"}})
    state.links_set({"n1->n2": "127.0.0.1:7012", "coord->n1": "127.0.0.1:7001"})
    view = state.view_for(1)
    assert view["peers"]["2"]["address"] == "127.0.0.1:7012"
    assert view["peers"]["3"]["address"] == "127.0.0.1:6333"
    assert "links" not in view
    assert state.view_for(None)["peers"]["2"]["address"] == "127.0.0.1:6332"


def test_an_empty_state_has_the_default_settings_and_unknown_peers_get_a_name() -> None:
    state = ClusterState()
    assert state.data["settings"] == {"default_priority": "replica", "incoming_transfers_limit": 1,
                                      "outgoing_transfers_limit": 1}
    assert (state.version, state.peer_ids(), state.peer_name(4)) == (0, [], "peer 4")
