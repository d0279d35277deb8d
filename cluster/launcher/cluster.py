"""The launcher: a whole cluster as real processes, with a fault proxy on every link.

    async with Cluster(nodes=3) as cluster:
        cluster.node_url("n1"); await cluster.node_kill("n2"); await cluster.node_restart("n2")

Local mode (the default) starts (or joins) an MQTT broker (embedded amqtt unless `SHARDSIM_MQTT_URL` is set)
and a Toxiproxy-compatible fault proxy (embedded unless `TOXIPROXY_URL` is set), then the coordinator
process, one proxy per directed link (`n1->n2`, `coord->n2`), the topology (peers and link addresses) on
the coordinator, and the node processes, each on its own 127.0.0.1 port with its own data directory. Every
process logs to a file in the run folder; stopping the cluster stops every process by PID.

External mode (`coordinator_url` and `external_nodes` given, see `cluster/launcher/external.py` for the command-line
flags) joins processes that something else started (containers, other hosts): it only creates the proxies
on the given Toxiproxy, registers the topology and the settings on the coordinator, and waits. Process
faults need a process this launcher owns, so there they raise `ProcessNotOwned`.

Either way the cluster is ready when every node answers `/readyz` and sees every other node at the listen
address of its proxy link (`GET /cluster`), so no node -> node call bypasses the fault proxy.
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

from cluster.events.broker import EmbeddedBroker
from cluster.launcher.processes import ChildProcess, ProcessNotOwned, wait_http_ok
from cluster.ports import port_for_process
from cluster.proxy.client import ToxiproxyClient
from cluster.proxy.server import ProxyServer
from node import clock
from node.apikey import api_key_headers
from node.eventbus import EventPublisher
from node.protocol import PRIORITY_DEFAULT
from node.retry import Backoff, WaitTimeout, retry, wait_until

WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
POLL_INTERVAL_S = 0.1


class ClusterNotReady(Exception):
    """The cluster did not come up in time, or external mode lacks something it needs; says what."""


def run_dir_default(prefix: str = "run") -> Path:
    stamp = dt.datetime.fromtimestamp(clock.now()).strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / f"{prefix}-{stamp}"


@dataclass(frozen=True)
class NodeAddress:
    """A node that runs outside the launcher: its name, peer id and `host:port` (as the proxy reaches it)."""
    name: str
    peer_id: int
    address: str


@dataclass
class NodeSpec:
    name: str
    peer_id: int
    port: int
    data_dir: Path | None
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
    default_priority: str = PRIORITY_DEFAULT
    transfers_limit: int = 1
    node_args: list[str] = field(default_factory=list)
    api_key: str | None = None
    ready_timeout_s: float = 30.0
    coordinator_url: str | None = None  # external mode: the coordinator runs elsewhere
    external_nodes: list[NodeAddress] = field(default_factory=list)  # external mode: the nodes
    proxy_host: str | None = None  # the host nodes reach link listen ports at (e.g. `toxiproxy`)
    proxy_listen_host: str | None = None  # where links listen on the proxy (default 127.0.0.1 or 0.0.0.0)
    proxy_base_port: int | None = None  # links listen on consecutive ports from here (default: any)


class Cluster:
    """A cluster; use as `async with Cluster(nodes=3) as cluster:` (or `Cluster(external_nodes=...)`)."""

    def __init__(self, nodes: int = 3, **options: Any) -> None:
        self.options = ClusterOptions(nodes=nodes, **options)
        self.external = bool(self.options.external_nodes) or self.options.coordinator_url is not None
        if self.external:
            self.options.nodes = len(self.options.external_nodes)
        self.run_dir = (self.options.run_dir or run_dir_default()).resolve()
        self.cluster_name = self.options.cluster_name or (
            os.environ.get("SHARDSIM_CLUSTER", "shardsim") if self.external
            else f"shardsim-{os.getpid()}-{id(self) % 10000}")
        self.mqtt_url = self.options.mqtt_url or os.environ.get("SHARDSIM_MQTT_URL")
        self.toxiproxy_url = self.options.toxiproxy_url or os.environ.get("TOXIPROXY_URL")
        self.nodes: dict[str, NodeSpec] = {}
        self.coordinator: ChildProcess | None = None
        self.coordinator_port = 0
        self.links: dict[str, str] = {}
        self.stack = contextlib.AsyncExitStack()
        self.toxiproxy: ToxiproxyClient | None = None
        self.events: EventPublisher | None = None
        self.broker: EmbeddedBroker | None = None
        self.session: aiohttp.ClientSession | None = None
        for node in self.options.external_nodes:
            port = int(node.address.rsplit(":", 1)[1])
            self.nodes[node.name] = NodeSpec(node.name, node.peer_id, port, None, external_address=node.address)

    # -- addresses ----------------------------------------------------------------------------------------
    @property
    def coordinator_url(self) -> str:
        return (self.options.coordinator_url or f"http://127.0.0.1:{self.coordinator_port}").rstrip("/")

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

    @property
    def headers(self) -> dict[str, str]:
        return api_key_headers(self.options.api_key)

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
        if self.external:
            self._external_check()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.session = await self.stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))
        if self.mqtt_url is None:
            self.broker = await self.stack.enter_async_context(EmbeddedBroker())
            self.mqtt_url = self.broker.url
        if self.toxiproxy_url is None:
            proxy_server = await self.stack.enter_async_context(ProxyServer(port=0))
            self.toxiproxy_url = proxy_server.url
        self.toxiproxy = await self.stack.enter_async_context(ToxiproxyClient(self.toxiproxy_url))
        self.events = await self.stack.enter_async_context(
            EventPublisher(self.mqtt_url, self.cluster_name, "launcher"))
        self.stack.push_async_callback(self._processes_stop)
        self.stack.callback(self._stopped_publish)
        if self.external:
            await self._external_join()
        else:
            await self._local_start()
        await self.wait_nodes_linked(self.options.ready_timeout_s)
        self.events.publish("cluster.started", external=self.external, endpoints=self.endpoints(),
                            links=dict(self.links))

    def _stopped_publish(self) -> None:
        if self.events is not None:
            self.events.publish("cluster.stopped", dead=self.dead_processes())

    async def _local_start(self) -> None:
        self._ports_choose()
        await self._coordinator_start()
        await self._links_create()
        await self._topology_register()
        await asyncio.gather(*(self._node_start(spec) for spec in self.nodes.values()))

    async def _external_join(self) -> None:
        timeout_s = self.options.ready_timeout_s
        await self.wait_toxiproxy_ready(timeout_s)
        await wait_http_ok(f"{self.coordinator_url}/readyz", timeout_s, "the coordinator", self.headers)
        await self._links_create()
        await self._topology_register()
        await self._settings_register()
        await asyncio.gather(*(wait_http_ok(f"{spec.url}/readyz", timeout_s, spec.name, self.headers)
                               for spec in self.nodes.values()))

    def _external_check(self) -> None:
        missing = [what for what, value in (
            ("the coordinator URL (--coordinator-url / SHARDSIM_COORDINATOR_URL)", self.options.coordinator_url),
            ("the nodes (--node NAME=PEER_ID@HOST:PORT / SHARDSIM_NODES)", self.options.external_nodes),
            ("the Toxiproxy API URL (--toxiproxy-url / TOXIPROXY_URL)", self.toxiproxy_url),
            ("the MQTT broker URL (--mqtt-url / SHARDSIM_MQTT_URL)", self.mqtt_url)) if not value]
        if missing:
            raise ClusterNotReady("external mode needs " + ", ".join(missing))
        names = [node.name for node in self.options.external_nodes]
        peer_ids = [node.peer_id for node in self.options.external_nodes]
        if len(set(names)) != len(names) or len(set(peer_ids)) != len(peer_ids):
            raise ClusterNotReady(f"node names and peer ids must be unique: {self.options.external_nodes}")

    def _ports_choose(self) -> None:
        """Coordinator on `base_port`, nodes on the next ports; without it, free ports outside the range that
        port-0 binds (proxy links) take from, so a link never grabs a node's port before the node binds it."""
        base = self.options.base_port
        taken: set[int] = set()
        self.coordinator_port = base if base else port_for_process(taken)
        taken.add(self.coordinator_port)
        for index in range(self.options.nodes):
            name = f"n{index + 1}"
            port = base + 1 + index if base else port_for_process(taken)
            taken.add(port)
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

    # -- links and topology -------------------------------------------------------------------------------
    def link_names(self) -> list[tuple[str, str, NodeSpec]]:
        """(link name, from, to-node) for every directed link: n_i -> n_j and coord -> n_j."""
        links = []
        for target in self.nodes.values():
            links.append((f"coord->{target.name}", "coord", target))
            for source in self.nodes:
                if source != target.name:
                    links.append((f"{source}->{target.name}", source, target))
        return links

    def link_listen(self, index: int) -> str:
        """Where link number `index` listens on the proxy: any port, or `proxy_base_port + index`."""
        host = self.options.proxy_listen_host or ("0.0.0.0" if self.options.proxy_host else "127.0.0.1")
        port = self.options.proxy_base_port + index if self.options.proxy_base_port else 0
        return f"{host}:{port}"

    def link_address(self, listen: str) -> str:
        """The address nodes reach a link at: its real listen port on `proxy_host` (or its listen host)."""
        host, port = listen.rsplit(":", 1)
        if self.options.proxy_host:
            host = self.options.proxy_host
        elif host in WILDCARD_HOSTS:
            host = "127.0.0.1"
        return f"{host}:{port}"

    async def _links_create(self) -> None:
        assert self.toxiproxy is not None
        existing = await self.toxiproxy.proxies()
        for index, (name, _source, target) in enumerate(self.link_names()):
            if name in existing:
                await self.toxiproxy.proxy_delete(name)
            proxy = await self.toxiproxy.proxy_create(name, self.link_listen(index), target.address)
            self.links[name] = self.link_address(str(proxy["listen"]))

    async def _coordinator_put(self, path: str, body: dict[str, Any]) -> None:
        assert self.session is not None
        async with self.session.put(f"{self.coordinator_url}{path}", json=body,
                                    headers=self.headers) as response:
            response.raise_for_status()

    async def _topology_register(self) -> None:
        peers = [{"peer_id": spec.peer_id, "name": spec.name, "address": spec.address}
                 for spec in self.nodes.values()]
        await self._coordinator_put("/internal/topology", {"peers": peers, "links": self.links})

    async def _settings_register(self) -> None:
        """External mode: the coordinator was started elsewhere, so the run's settings are set on it."""
        limit = self.options.transfers_limit
        await self._coordinator_put("/internal/settings", {
            "default_priority": self.options.default_priority,
            "incoming_transfers_limit": limit, "outgoing_transfers_limit": limit})

    # -- readiness ----------------------------------------------------------------------------------------
    async def wait_toxiproxy_ready(self, timeout_s: float) -> None:
        assert self.toxiproxy is not None
        try:
            await retry(self.toxiproxy.version, timeout_s=timeout_s, backoff=Backoff.fixed(POLL_INTERVAL_S * 5),
                        retry_on=(Exception,))  # ToxiproxyError, connection refused: not up yet
        except Exception as error:
            raise ClusterNotReady(f"Toxiproxy at {self.toxiproxy_url} not ready after {timeout_s} s: "
                                  f"{error}") from error

    async def links_seen(self, spec: NodeSpec) -> dict[str, str]:
        """The address `spec` uses for each other node (`GET /cluster`), by node name."""
        assert self.session is not None
        async with self.session.get(f"{spec.url}/cluster", headers=self.headers) as response:
            response.raise_for_status()
            peers = (await response.json())["result"].get("peers", {})
        seen = {}
        for peer_id, peer in peers.items():
            with contextlib.suppress(KeyError, ValueError):
                seen[self.name_of(int(peer_id))] = str(peer["uri"]).removeprefix("http://").rstrip("/")
        return seen

    async def wait_nodes_linked(self, timeout_s: float) -> None:
        """Wait until every node sees every other node at the listen address of its proxy link."""
        wrong: dict[str, str] = {}

        async def linked() -> bool:
            wrong.clear()
            for spec in self.nodes.values():
                try:
                    seen = await self.links_seen(spec)
                except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as error:
                    wrong[spec.name] = f"GET /cluster failed: {error!r}"
                    continue
                expected = {other: self.links[f"{spec.name}->{other}"] for other in self.nodes if other != spec.name}
                if any(seen.get(other) != address for other, address in expected.items()):
                    wrong[spec.name] = f"sees {seen}, expected {expected}"
            return not wrong
        try:
            await wait_until(linked, timeout_s, interval_s=POLL_INTERVAL_S)
        except WaitTimeout:
            raise ClusterNotReady(f"nodes do not see their peers through the proxy links after {timeout_s} s"
                                  f" (a node started with another --name or --peer-id?): {wrong}") from None

    async def _node_start(self, spec: NodeSpec) -> None:
        if spec.process is None:
            spec.process = ChildProcess(spec.name, self._node_args(spec), self.run_dir / f"{spec.name}.log",
                                        f"{spec.url}/readyz")
        await spec.process.start(self.options.ready_timeout_s)

    def _node_args(self, spec: NodeSpec) -> list[str]:
        args = ["-m", "node", "--port", str(spec.port), "--data-dir", str(spec.data_dir),
                "--peer-id", str(spec.peer_id), "--name", spec.name, "--coordinator-url", self.coordinator_url,
                "--mqtt-url", str(self.mqtt_url), "--cluster-name", self.cluster_name,
                "--default-priority", self.options.default_priority, *self.options.node_args]
        if self.options.api_key:
            args += ["--api-key", self.options.api_key]
        return args

    # -- owned processes ----------------------------------------------------------------------------------
    def processes(self) -> dict[str, ChildProcess]:
        """The processes this launcher started, by name (`coordinator`, `n1`, ...); empty in external mode."""
        owned = {"coordinator": self.coordinator} if self.coordinator is not None else {}
        owned.update({name: spec.process for name, spec in self.nodes.items() if spec.process is not None})
        return owned

    async def _processes_stop(self) -> None:
        children = [spec.process for spec in self.nodes.values() if spec.process is not None]
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)
        if self.coordinator is not None:
            await self.coordinator.stop()

    def dead_processes(self) -> list[str]:
        """Reports of processes that exited although nobody stopped them (with the end of their log)."""
        return [child.exit_report() for child in self.processes().values()
                if not child.alive and not child.expected_exit]

    # -- process faults -----------------------------------------------------------------------------------
    def _process(self, name: str) -> ChildProcess:
        if name != "coordinator" and name not in self.nodes:
            raise KeyError(f"no node named {name!r} (nodes: {', '.join(self.nodes)})")
        process = self.processes().get(name)
        if process is None:
            raise ProcessNotOwned(f"{name} runs outside this launcher (external mode): kill, pause, resume and "
                                  "restart need a process the launcher started; use link faults (link_down, "
                                  "partition, isolate) instead, or stop the container yourself")
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

    async def coordinator_kill(self) -> None:
        await self.node_kill("coordinator")

    def node_paused(self, name: str) -> bool:
        return self._process(name).paused

    def node_alive(self, name: str) -> bool:
        return self._process(name).alive

    # -- the event bus ------------------------------------------------------------------------------------
    async def broker_stop(self) -> None:
        """A broker outage: the embedded MQTT broker stops (every connection drops; publishers queue and retry)."""
        if self.broker is None:
            raise ProcessNotOwned(f"the MQTT broker at {self.mqtt_url} runs outside this launcher: stop it yourself")
        await self.broker.stop()

    async def broker_start(self) -> None:
        """The broker is back on the same port (publishers reconnect and flush what they queued)."""
        if self.broker is None:
            raise ProcessNotOwned(f"the MQTT broker at {self.mqtt_url} runs outside this launcher")
        await self.broker.start()
