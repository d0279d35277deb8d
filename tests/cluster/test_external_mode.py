"""External mode end to end, on one machine: processes stand in for the containers of docker-compose.yml.

The test starts what compose would run: the project's fault proxy as the "external" Toxiproxy
(`python -m cluster.proxy`), mosquitto as the broker, a coordinator and two nodes that register themselves
(`--coordinator-url ... --peer-id N --name nN --advertise-address host:port`). Then the launcher joins them
through the same flags the scenario runner uses (`cluster_from_args`), and the cluster must behave: writes
are forwarded through the proxy links, and a link cut on the Toxiproxy API makes a forwarded write fail and
the replica Dead. Every process is stopped by PID at the end, even when the test fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster, ClusterNotReady, NodeAddress
from cluster.launcher.external import cluster_from_args, external_args_add
from cluster.launcher.processes import ChildProcess, ProcessFailed, ProcessNotOwned, wait_http_ok
from cluster.proxy.server import ProxyServer
from node.retry import wait_until
from tests.cluster.events.brokers import MosquittoControl
from tests.cluster.helpers import ClusterApi
from tests.helpers import points_make
from tests.processes import free_port

START_TIMEOUT_S = 30.0


StartProcess = Callable[[str, list[str], str], Awaitable[ChildProcess]]


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[StartProcess]:
    """`await start(name, python_args, ready_url)`: a Python child process, stopped by PID at teardown."""
    started: list[ChildProcess] = []

    async def start(name: str, args: list[str], ready_url: str) -> ChildProcess:
        child = ChildProcess(name, args, tmp_path / "logs" / f"{name}.log", ready_url)
        started.append(child)
        await child.start(START_TIMEOUT_S)
        return child

    try:
        yield start
    finally:
        await asyncio.gather(*(child.stop() for child in reversed(started)), return_exceptions=True)


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoControl]:
    broker = MosquittoControl(tmp_path)
    try:
        await broker.start()
        yield broker
    finally:
        await broker.stop()


async def services_start(tmp_path: Path, start: StartProcess, mqtt_url: str, cluster_name: str,
                         nodes: int) -> dict[str, Any]:
    """The stand-ins for the compose services; returns their addresses."""
    toxiproxy_port, coordinator_port = free_port(), free_port()
    await start("toxiproxy", ["-m", "cluster.proxy", "--port", str(toxiproxy_port)],
                f"http://127.0.0.1:{toxiproxy_port}/version")
    coordinator_url = f"http://127.0.0.1:{coordinator_port}"
    await start("coordinator", ["-m", "cluster.coordinator", "--port", str(coordinator_port),
                                "--db", str(tmp_path / "coordinator.sqlite"), "--mqtt-url", mqtt_url,
                                "--cluster-name", cluster_name], f"{coordinator_url}/readyz")
    node_addresses = {}
    for peer_id in range(1, nodes + 1):
        name, port = f"n{peer_id}", free_port()
        node_addresses[name] = f"127.0.0.1:{port}"
        await start(name, ["-m", "node", "--port", str(port), "--data-dir", str(tmp_path / name),
                           "--coordinator-url", coordinator_url, "--peer-id", str(peer_id), "--name", name,
                           "--advertise-address", node_addresses[name], "--mqtt-url", mqtt_url,
                           "--cluster-name", cluster_name], f"http://{node_addresses[name]}/readyz")
    return {"toxiproxy_url": f"http://127.0.0.1:{toxiproxy_port}", "coordinator_url": coordinator_url,
            "nodes": node_addresses}


def external_argv(services: dict[str, Any], mqtt_url: str, cluster_name: str) -> list[str]:
    nodes = ",".join(f"{name}={name[1:]}@{address}" for name, address in services["nodes"].items())
    return ["--external", "--node", nodes, "--coordinator-url", services["coordinator_url"],
            "--toxiproxy-url", services["toxiproxy_url"], "--mqtt-url", mqtt_url, "--cluster-name", cluster_name,
            "--proxy-host", "127.0.0.1"]


def args_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    external_args_add(parser)
    return parser.parse_args(argv)


async def replica_state_is(api: ClusterApi, peer_id: int, state: str) -> bool:
    """Whether `peer_id`'s replica of shard 0 of `c` is in `state`, as n1 sees it."""
    info = await api.cluster_info("n1", "c")
    shards = info["local_shards"] + info["remote_shards"]
    return state == next((s["state"] for s in shards if s.get("peer_id", info["peer_id"]) == peer_id), None)


async def local_points(api: ClusterApi, node: str) -> int:
    info = await api.cluster_info(node, "c")
    return int(sum(shard["points_count"] for shard in info["local_shards"]))


async def test_joined_cluster_forwards_through_the_proxy_and_a_cut_link_makes_the_replica_dead(
        tmp_path: Path, processes: StartProcess, mosquitto: MosquittoControl) -> None:
    cluster_name = f"external-{os.getpid()}"
    services = await services_start(tmp_path, processes, mosquitto.url, cluster_name, nodes=2)
    args = args_parse(external_argv(services, mosquitto.url, cluster_name))
    cluster = cluster_from_args(args, nodes=2, run_dir=tmp_path / "run", transfers_limit=0)

    async with cluster, Recorder(mosquitto.url, cluster_name, tmp_path / "history.jsonl") as recorder, \
            ClusterApi(cluster) as api:
        assert cluster.external and cluster.processes() == {}
        n1, n2 = cluster.node_url("n1"), cluster.node_url("n2")
        assert (n1, n2) == tuple(f"http://{address}" for address in services["nodes"].values())
        link = cluster.links["n1->n2"]
        assert link.startswith("127.0.0.1:") and link != services["nodes"]["n2"], "n1 reaches n2 via a proxy"
        assert (await cluster.links_seen(cluster.nodes["n1"]))["n2"] == link

        await api.collection_create("n1", "c", shard_number=1, replication_factor=2, write_consistency_factor=1,
                                    size=2)
        await wait_until(lambda: replica_state_is(api, 2, "Active"), 15.0, what="n2's replica Active")
        await api.upsert_ok("n1", "c", points_make(range(10), size=2))
        assert await local_points(api, "n2") == 10, "the write was forwarded to n2 through its proxy link"

        assert cluster.toxiproxy is not None
        await cluster.toxiproxy.proxy_update("n1->n2", enabled=False)
        status, body = await api.upsert("n1", "c", points_make([100], size=2))
        assert status == 200, f"acknowledged by n1 alone (write_consistency_factor 1): {body}"
        await wait_until(lambda: replica_state_is(api, 2, "Dead"), 15.0, what="n2's replica Dead")
        event = await recorder.wait_event(
            lambda e: e.get("kind") == "replica.state" and e.get("peer") == 2 and e.get("to") == "Dead", 10.0)
        assert event["collection"] == "c"
        assert await local_points(api, "n2") == 10, "the forwarded write never reached n2"

        with pytest.raises(ProcessNotOwned, match="external mode"):
            await cluster.node_kill("n2")
        with pytest.raises(ProcessNotOwned, match="external mode"):
            await cluster.node_pause("n1")


async def test_shardsim_up_external_joins_prints_and_leaves_the_processes_running(
        tmp_path: Path, processes: StartProcess, mosquitto: MosquittoControl) -> None:
    cluster_name = f"external-up-{os.getpid()}"
    services = await services_start(tmp_path, processes, mosquitto.url, cluster_name, nodes=2)
    argv = ["up", "--run-dir", str(tmp_path / "up"), "--nodes", "2",
            *external_argv(services, mosquitto.url, cluster_name)]
    up = await asyncio.create_subprocess_exec(sys.executable, "-m", "cluster.cli", *argv,
                                              stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        lines: list[str] = []
        async with asyncio.timeout(START_TIMEOUT_S):
            while not lines or not lines[-1].startswith("Stop with Ctrl-C"):
                assert up.stdout is not None
                line = await up.stdout.readline()
                assert line, "shardsim up ended early:\n" + "\n".join(lines)
                lines.append(line.decode().rstrip())
        up.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(up.communicate(), 20.0)
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
    output = "\n".join(lines)
    assert up.returncode == 0, output + rest.decode()
    assert "joined (external mode)" in output
    assert f"n2           http://{services['nodes']['n2']}  peer 2" in output
    assert "pid" not in output.split("coordinator")[1].splitlines()[0], "no PID for a process it did not start"
    for address in services["nodes"].values():
        await wait_http_ok(f"http://{address}/readyz", 5.0, "a node after `up --external` stopped")


async def test_external_mode_without_a_broker_says_what_is_missing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARDSIM_MQTT_URL", raising=False)
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    args = args_parse(["--external", "--node", "n1=1@127.0.0.1:1", "--coordinator-url", "http://127.0.0.1:1"])
    with pytest.raises(ClusterNotReady, match="Toxiproxy API URL.*MQTT broker URL"):
        async with cluster_from_args(args, nodes=1, run_dir=tmp_path / "run"):
            pass


async def test_external_mode_names_a_coordinator_that_does_not_answer(tmp_path: Path) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}"
    async with ProxyServer(port=0) as proxy:
        cluster = Cluster(external_nodes=[NodeAddress("n1", 1, "127.0.0.1:1")], coordinator_url=dead_url,
                          toxiproxy_url=proxy.url, mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
                          run_dir=tmp_path / "run", ready_timeout_s=1.0)
        with pytest.raises(ProcessFailed, match=f"the coordinator not ready at {dead_url}/readyz"):
            async with cluster:
                pass
