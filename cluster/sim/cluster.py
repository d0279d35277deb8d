"""`SimCluster`: the launcher's `Cluster`, each of its processes a host of the running simulated loop.

Used exactly as the runner, the nemesis and the pytest plugin use a `Cluster` (node_url, node_names,
peer_id, name_of, node_kill/pause/resume/restart, coordinator_restart, toxiproxy, links, mqtt_url,
cluster_name, run_dir); the topology, the proxy links and the readiness checks are the launcher's own code.
Hosts: `n1`..`nN` (the nodes, each on port 6333, with its data directory in the run folder),
`coordinator` (its SQLite file in the run folder), `proxy` (the project's fault proxy: every node -> node
and coordinator -> node connection goes through one of its links, as in real mode), and the event bus
(`cluster.sim.bus`). The runner and the client run on host `runner`. Must be entered inside a running
`SimEngine` with a `SimBus` installed (cluster/sim/run.py does both).
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster.launcher.cluster import Cluster, NodeSpec
from cluster.launcher.processes import ProcessNotOwned
from cluster.sim import bus as sim_bus
from cluster.sim import engine
from cluster.sim.hosts import (
    COORDINATOR_HOST,
    COORDINATOR_PORT,
    NODE_PORT,
    PROXY_API_PORT,
    PROXY_HOST,
    SimProcess,
    coordinator_boot,
    node_boot,
    proxy_boot,
)
from cluster.sim.logs import host_logs

CLUSTER_NAME = "shardsim-sim"
LINK_PORT_BASE = 20_000


class SimCluster(Cluster):
    """A `Cluster` in simulation: `async with SimCluster(nodes=3, run_dir=...) as cluster:` on a SimEngine."""

    def __init__(self, nodes: int = 3, **options: Any) -> None:
        if options.get("external_nodes") or options.get("coordinator_url"):
            raise ValueError("a simulated cluster starts its own processes: external mode does not apply")
        for ignored in ("mqtt_url", "toxiproxy_url", "proxy_host", "proxy_listen_host", "proxy_base_port",
                        "base_port"):
            options.pop(ignored, None)
        options.setdefault("cluster_name", CLUSTER_NAME)
        super().__init__(nodes, proxy_host=PROXY_HOST, proxy_listen_host="0.0.0.0",
                         proxy_base_port=LINK_PORT_BASE, **options)
        self.mqtt_url = sim_bus.BUS_URL
        self.toxiproxy_url = f"http://{PROXY_HOST}:{PROXY_API_PORT}"
        self.coordinator_port = COORDINATOR_PORT
        self.hosts: dict[str, SimProcess] = {}
        self._loop: engine.SimEngine | None = None

    # -- addresses ----------------------------------------------------------------------------------------
    @property
    def coordinator_url(self) -> str:
        return f"http://{COORDINATOR_HOST}:{COORDINATOR_PORT}"

    @property
    def loop(self) -> engine.SimEngine:
        assert self._loop is not None, "the simulated cluster is not started (use `async with`)"
        return self._loop

    @property
    def bus(self) -> sim_bus.SimBus:
        return sim_bus.current()

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def _start(self) -> None:
        loop = engine.simulated_loop()
        if loop is None:
            raise RuntimeError("SimCluster runs on a simulated loop (cluster.sim.run), not on a real one")
        self._loop = loop
        self.stack.enter_context(host_logs(self.run_dir, loop))
        await super()._start()

    async def _local_start(self) -> None:
        self._ports_choose()
        proxy = SimProcess(self.loop, PROXY_HOST, proxy_boot(PROXY_HOST, PROXY_API_PORT),
                           f"{self.toxiproxy_url}/version", self._host_killed)
        self.hosts[PROXY_HOST] = proxy
        await proxy.start(self.options.ready_timeout_s)
        await super()._local_start()

    def _ports_choose(self) -> None:
        for index in range(self.options.nodes):
            name = f"n{index + 1}"
            if name not in self.nodes:
                self.nodes[name] = NodeSpec(name, index + 1, NODE_PORT, self.run_dir / name / "data",
                                            external_address=f"{name}:{NODE_PORT}")

    async def _coordinator_start(self) -> None:
        args = ["--host", COORDINATOR_HOST, "--port", str(COORDINATOR_PORT),
                "--db", str(self.run_dir / "coordinator.sqlite"), "--mqtt-url", str(self.mqtt_url),
                "--cluster-name", self.cluster_name, "--default-priority", self.options.default_priority,
                "--incoming-transfers-limit", str(self.options.transfers_limit),
                "--outgoing-transfers-limit", str(self.options.transfers_limit)]
        if self.options.api_key:
            args += ["--api-key", self.options.api_key]
        process = SimProcess(self.loop, COORDINATOR_HOST, coordinator_boot(COORDINATOR_HOST, args),
                             f"{self.coordinator_url}/readyz", self._host_killed)
        self.hosts[COORDINATOR_HOST] = process
        await process.start(self.options.ready_timeout_s)

    async def _node_start(self, spec: NodeSpec) -> None:
        if spec.name not in self.hosts:
            argv = ["--host", spec.name, *self._node_args(spec)[2:]]  # the launcher's flags, minus `-m node`
            self.hosts[spec.name] = SimProcess(self.loop, spec.name, node_boot(spec.name, argv),
                                               f"{spec.url}/readyz", self._host_killed)
        await self.hosts[spec.name].start(self.options.ready_timeout_s)

    async def _processes_stop(self) -> None:
        nodes = [self.hosts[name] for name in self.nodes if name in self.hosts]
        await asyncio.gather(*(process.stop() for process in nodes), return_exceptions=True)
        for name in (COORDINATOR_HOST, PROXY_HOST):
            if name in self.hosts:
                await self.hosts[name].stop()

    def _host_killed(self, name: str) -> None:
        self.bus.host_killed(name)

    def dead_processes(self) -> list[str]:
        return [process.exit_report() for process in self.hosts.values()
                if process.task is not None and process.task.done() and not process.expected_exit]

    # -- process faults -----------------------------------------------------------------------------------
    def _host(self, name: str) -> SimProcess:
        if name != COORDINATOR_HOST and name not in self.nodes:
            raise KeyError(f"no node named {name!r} (nodes: {', '.join(self.nodes)})")
        process = self.hosts.get(name)
        if process is None:
            raise ProcessNotOwned(f"{name} was never started")
        return process

    async def node_kill(self, name: str) -> None:
        await self._host(name).kill()

    async def node_pause(self, name: str) -> None:
        self._host(name).pause()

    async def node_resume(self, name: str) -> None:
        self._host(name).resume()

    async def node_restart(self, name: str) -> None:
        """Kill if alive, then boot again on the same host, port and data directory (same identity)."""
        process = self._host(name)
        if process.alive:
            await process.kill()
        await process.start(self.options.ready_timeout_s)

    async def coordinator_restart(self) -> None:
        await self.node_restart(COORDINATOR_HOST)

    async def coordinator_kill(self) -> None:
        await self.node_kill(COORDINATOR_HOST)

    def node_paused(self, name: str) -> bool:
        return self._host(name).paused

    def node_alive(self, name: str) -> bool:
        return self._host(name).alive

    # -- the event bus ------------------------------------------------------------------------------------
    async def broker_stop(self) -> None:
        self.bus.outage_start()

    async def broker_start(self) -> None:
        self.bus.outage_end()
