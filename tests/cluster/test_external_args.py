"""External-mode flags and addresses, without processes: how nodes are written and how link addresses are told."""

from __future__ import annotations

import argparse

import pytest

from cluster.launcher import Cluster, ClusterNotReady, NodeAddress
from cluster.launcher.external import cluster_from_args, external_args_add, node_parse, nodes_parse


def args_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    external_args_add(parser)
    return parser.parse_args(argv)


def test_a_node_is_name_peer_id_and_address() -> None:
    assert node_parse("n1=1@n1:6333") == NodeAddress("n1", 1, "n1:6333")
    assert node_parse("db-7=12@10.0.0.7:7000") == NodeAddress("db-7", 12, "10.0.0.7:7000")
    assert node_parse("n2=[::1]:6333", position=2) == NodeAddress("n2", 2, "[::1]:6333")


@pytest.mark.parametrize("text", ["n1", "n1=host", "n1=1@host", "=1@host:1", "n1=x@host:1"])
def test_a_malformed_node_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="NAME=PEER_ID@HOST:PORT"):
        node_parse(text)


def test_repeated_and_comma_separated_nodes_keep_their_order_and_default_peer_ids() -> None:
    nodes = nodes_parse(["n1=a:1,n2=b:2", "n3=7@c:3"])
    assert nodes == [NodeAddress("n1", 1, "a:1"), NodeAddress("n2", 2, "b:2"), NodeAddress("n3", 7, "c:3")]


def test_the_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDSIM_NODES", "n1=1@n1:6333,n2=2@n2:6333")
    monkeypatch.setenv("SHARDSIM_COORDINATOR_URL", "http://coordinator:6300")
    monkeypatch.setenv("TOXIPROXY_URL", "http://toxiproxy:8474")
    monkeypatch.setenv("SHARDSIM_PROXY_HOST", "toxiproxy")
    cluster = cluster_from_args(args_parse(["--external"]), nodes=2)
    assert cluster.external and cluster.node_names() == ["n1", "n2"] and cluster.options.nodes == 2
    assert cluster.coordinator_url == "http://coordinator:6300" and cluster.toxiproxy_url == "http://toxiproxy:8474"
    assert cluster.node_url("n2") == "http://n2:6333" and cluster.peer_id("n2") == 2
    assert cluster.link_listen(0) == "0.0.0.0:0", "links listen on every interface of the proxy container"


def test_a_scenario_for_three_nodes_does_not_run_on_two() -> None:
    args = args_parse(["--external", "--node", "n1=1@a:1,n2=2@b:2", "--coordinator-url", "http://c:1"])
    with pytest.raises(ClusterNotReady, match="needs 3 nodes, external mode was given 2 \\(n1, n2\\)"):
        cluster_from_args(args, nodes=3)


def test_external_without_nodes_or_coordinator_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARDSIM_NODES", raising=False)
    with pytest.raises(ClusterNotReady, match="--external needs the nodes"):
        cluster_from_args(args_parse(["--external", "--coordinator-url", "http://c:1"]), nodes=1)


def test_without_external_the_cluster_is_local() -> None:
    cluster = cluster_from_args(args_parse([]), nodes=4, base_port=41000)
    assert not cluster.external and cluster.options.nodes == 4 and cluster.options.base_port == 41000
    assert cluster.coordinator_url == "http://127.0.0.1:0", "no port before the cluster starts"


def test_link_addresses_use_the_advertised_host_and_the_real_port() -> None:
    advertised = Cluster(external_nodes=[NodeAddress("n1", 1, "n1:6333")], coordinator_url="http://c:1",
                         proxy_host="toxiproxy", proxy_base_port=20000)
    assert advertised.link_address("[::]:20003") == "toxiproxy:20003", "what a real Toxiproxy answers"
    assert advertised.link_listen(3) == "0.0.0.0:20003"
    local = Cluster(nodes=2)
    assert local.link_listen(5) == "127.0.0.1:0"
    assert local.link_address("127.0.0.1:4567") == "127.0.0.1:4567"
    assert local.link_address("0.0.0.0:4567") == "127.0.0.1:4567"
