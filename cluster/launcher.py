"""The launcher: a whole cluster on one machine, as real processes, with a fault proxy on every link.

    async with Cluster(nodes=3) as cluster:
        cluster.node_url("n1"); await cluster.node_kill("n2"); await cluster.node_restart("n2")

It starts (or joins) an MQTT broker (embedded amqtt unless `SHARDSIM_MQTT_URL` is set) and a Toxiproxy-
compatible fault proxy (embedded unless `TOXIPROXY_URL` is set), then the coordinator process, one proxy per
directed link (`n1->n2`, `coord->n2`), the topology (peers and link addresses) on the coordinator, and the
node processes, each on its own 127.0.0.1 port with its own data directory, and waits until all are ready.
Every process logs to a file in the run folder; stopping the cluster stops every process by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cluster.events.broker import EmbeddedBroker, free_port
from cluster.processes import ChildProcess, ProcessFailed
from cluster.proxy.client import ToxiproxyClient
from cluster.proxy.server import ProxyServer
from node.eventbus import EventPublisher


def run_dir_default(prefix: str = "run") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / f"{prefix}-{stamp}"


@dataclass
class NodeSpec:
    name: str
    peer_id: int
    port: int
    data_dir: Path
    process: ChildProcess | None = None
    external_address: str | None = None

    @property
    def address(self) -> str:
        return self.external_address or f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass
class ClusterOptions:
    nodes: int = 3
    base_port: int | None = None
    run_dir: Path | None = None
    cluster_name: str | None = None
    mqtt_url: str | None = None
    toxiproxy_url: str | None = None
    default_priority: str = "replica"
    transfers_limit: int = 1
    node_args: list[str] = field(default_factory=list)
    api_key: str | None = None
    ready_timeout_s: float = 30.0


class Cluster:
    """A local cluster; use as `async with Cluster(nodes=3) as cluster:`."""

    def __init__(self, nodes: int = 3, **options: Any) -> None:
        self.options = ClusterOptions(nodes=nodes, **options)
        self.run_dir = (self.options.run_dir or run_dir_default()).resolve()
        self.cluster_name = self.options.cluster_name or f"shardsim-{os.getpid()}-{id(self) % 10000}"
        self.mqtt_url = self.options.mqtt_url or os.environ.get("SHARDSIM_MQTT_URL")
        self.toxiproxy_url = self.options.toxiproxy_url or os.environ.get("TOXIPROXY_URL")
        self.nodes: dict[str, NodeSpec] = {}
        self.coordinator: ChildProcess | None = None
        self.coordinator_port = 0
        self.links: dict[str, str] = {}
        self.stack = contextlib.AsyncExitStack()
        self.toxiproxy: ToxiproxyClient | None = None
        self.events: EventPublisher | None = None
        self.session: aiohttp.ClientSession | None = None

    # -- addresses ----------------------------------------------------------------------------------------
    @property
    def coordinator_url(self) -> str:
        return f"http://127.0.0.1:{self.coordinator_port}"

    def node_url(self, name: str) -> str:
        return self.nodes[name].url

    def node_names(self) -> list[str]:
        return list(self.nodes)

    def peer_id(self, name: str) -> int:
        return self.nodes[name].peer_id

    def name_of(self, peer_id: int) -> str:
        for spec in self.nodes.values():
            if spec.peer_id == peer_id:
                return spec.name
        raise KeyError(peer_id)

    def endpoints(self) -> dict[str, str]:
        found = {"coordinator": self.coordinator_url, "toxiproxy": str(self.toxiproxy_url),
                 "mqtt": str(self.mqtt_url)}
        found.update({name: spec.url for name, spec in self.nodes.items()})
        return found

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Cluster:
        try:
            await self._start()
        except BaseException:
            await self.stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.session = await self.stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))
        if self.mqtt_url is None:
            broker = await self.stack.enter_async_context(EmbeddedBroker())
            self.mqtt_url = broker.url
        if self.toxiproxy_url is None:
            proxy_server = await self.stack.enter_async_context(ProxyServer(port=0))
            self.toxiproxy_url = proxy_server.url
        self.toxiproxy = await self.stack.enter_async_context(ToxiproxyClient(self.toxiproxy_url))
        self.events = await self.stack.enter_async_context(
            EventPublisher(self.mqtt_url, self.cluster_name, "launcher"))
        self.stack.push_async_callback(self._processes_stop)
        self._ports_choose()
        await self._coordinator_start()
        await self._links_create()
        await self._topology_register()
        await asyncio.gather(*(self._node_start(spec) for spec in self.nodes.values()))

    def _ports_choose(self) -> None:
        base = self.options.base_port
        self.coordinator_port = base if base else free_port()
        for index in range(self.options.nodes):
            name = f"n{index + 1}"
            port = base + 1 + index if base else free_port()
            self.nodes[name] = NodeSpec(name, index + 1, port, self.run_dir / name / "data")

    async def _coordinator_start(self) -> None:
        args = ["-m", "cluster.coordinator", "--port", str(self.coordinator_port),
                "--db", str(self.run_dir / "coordinator.sqlite"), "--mqtt-url", str(self.mqtt_url),
                "--cluster-name", self.cluster_name, "--default-priority", self.options.default_priority,
                "--incoming-transfers-limit", str(self.options.transfers_limit),
                "--outgoing-transfers-limit", str(self.options.transfers_limit)]
        if self.options.api_key:
            args += ["--api-key", self.options.api_key]
        self.coordinator = ChildProcess("coordinator", args, self.run_dir / "coordinator.log",
                                        f"{self.coordinator_url}/readyz")
        await self.coordinator.start(self.options.ready_timeout_s)

    def link_names(self) -> list[tuple[str, str, NodeSpec]]:
        """(link name, from, to-node) for every directed link: n_i -> n_j and coord -> n_j."""
        links = []
        for target in self.nodes.values():
            links.append((f"coord->{target.name}", "coord", target))
            for source in self.nodes:
                if source != target.name:
                    links.append((f"{source}->{target.name}", source, target))
        return links

    async def _links_create(self) -> None:
        assert self.toxiproxy is not None
        existing = await self.toxiproxy.proxies()
        for name, _source, target in self.link_names():
            if name in existing:
                await self.toxiproxy.proxy_delete(name)
            proxy = await self.toxiproxy.proxy_create(name, "127.0.0.1:0", target.address)
            self.links[name] = proxy["listen"]

    async def _topology_register(self) -> None:
        assert self.session is not None
        peers = [{"peer_id": spec.peer_id, "name": spec.name, "address": spec.address}
                 for spec in self.nodes.values()]
        async with self.session.put(f"{self.coordinator_url}/internal/topology",
                                    json={"peers": peers, "links": self.links}) as response:
            response.raise_for_status()

    def _node_args(self, spec: NodeSpec) -> list[str]:
        args = ["-m", "node", "--port", str(spec.port), "--data-dir", str(spec.data_dir),
                "--peer-id", str(spec.peer_id), "--name", spec.name, "--coordinator-url", self.coordinator_url,
                "--mqtt-url", str(self.mqtt_url), "--cluster-name", self.cluster_name,
                "--default-priority", self.options.default_priority, *self.options.node_args]
        if self.options.api_key:
            args += ["--api-key", self.options.api_key]
        return args

    async def _node_start(self, spec: NodeSpec) -> None:
        if spec.process is None:
            spec.process = ChildProcess(spec.name, self._node_args(spec), self.run_dir / f"{spec.name}.log",
                                        f"{spec.url}/readyz")
        await spec.process.start(self.options.ready_timeout_s)

    async def _processes_stop(self) -> None:
        children = [spec.process for spec in self.nodes.values() if spec.process is not None]
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)
        if self.coordinator is not None:
            await self.coordinator.stop()

    def dead_processes(self) -> list[str]:
        """Reports of processes that exited although nobody stopped them (with the end of their log)."""
        children = [spec.process for spec in self.nodes.values() if spec.process is not None]
        if self.coordinator is not None:
            children.append(self.coordinator)
        return [child.exit_report() for child in children if not child.alive and not child.expected_exit]

    # -- process faults -----------------------------------------------------------------------------------
    def _process(self, name: str) -> ChildProcess:
        if name == "coordinator":
            assert self.coordinator is not None
            return self.coordinator
        process = self.nodes[name].process
        if process is None:
            raise ProcessFailed(f"{name} is not a process this launcher started")
        return process

    async def node_kill(self, name: str) -> None:
        await self._process(name).kill()

    async def node_pause(self, name: str) -> None:
        self._process(name).pause()

    async def node_resume(self, name: str) -> None:
        self._process(name).resume()

    async def node_restart(self, name: str) -> None:
        """Kill if alive, then start again with the same port and data directory (same identity)."""
        process = self._process(name)
        if process.alive:
            await process.kill()
        await process.start(self.options.ready_timeout_s)

    async def coordinator_restart(self) -> None:
        await self.node_restart("coordinator")

    def node_paused(self, name: str) -> bool:
        return self._process(name).paused

    def node_alive(self, name: str) -> bool:
        return self._process(name).alive

