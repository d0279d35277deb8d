"""The nemesis: the faults scenarios and tests apply, each returning a handle that undoes it.

Network faults act on the fault proxy of a directed link `a->b` (connections that `a` opens to `b`; bytes
from `b` back to `a` are the proxy's downstream): `partition`, `isolate`, `link_down`, `latency`,
`bandwidth`, `cut_after`, `timeout`, `reset`, `slice`. Process faults act through the launcher: `node_kill`,
`node_pause`, `node_resume`, `node_restart` (the coordinator too: `node_kill("coordinator")`). The event bus:
`broker_outage`. `heal_all()` undoes everything still in force: toxics removed,
links enabled, paused nodes resumed, killed nodes restarted. Every fault and heal is published
(`fault.applied`, `fault.healed`) so the history and the report show it.

    handle = await nemesis.latency("n1", "n2", ms=200)   # one way: only n1 -> n2
    await handle.heal()
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cluster.proxy.client import ToxiproxyClient, ToxiproxyError

Undo = Callable[[], Awaitable[None]]


class EventSink(Protocol):
    def publish(self, kind: str, /, **fields: Any) -> None: ...


class ClusterLike(Protocol):
    toxiproxy: ToxiproxyClient | None
    links: dict[str, str]

    def node_names(self) -> list[str]: ...
    async def node_kill(self, name: str) -> None: ...
    async def node_pause(self, name: str) -> None: ...
    async def node_resume(self, name: str) -> None: ...
    async def node_restart(self, name: str) -> None: ...
    async def broker_stop(self) -> None: ...
    async def broker_start(self) -> None: ...


@dataclass
class FaultHandle:
    """One fault in force; `heal()` undoes it (once)."""

    fault_id: str
    fault: str
    target: str
    params: dict[str, Any]
    undo: Undo
    nemesis: Nemesis
    healed: bool = False

    async def heal(self) -> None:
        if self.healed:
            return
        self.healed = True
        await self.undo()
        self.nemesis._healed(self)


@dataclass
class Nemesis:
    cluster: ClusterLike
    events: EventSink | None = None
    active: dict[str, FaultHandle] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def proxy(self) -> ToxiproxyClient:
        assert self.cluster.toxiproxy is not None, "the cluster has no fault proxy"
        return self.cluster.toxiproxy

    # -- bookkeeping --------------------------------------------------------------------------------------
    def _applied(self, fault: str, target: str, params: dict[str, Any], undo: Undo,
                 fault_id: str | None = None) -> FaultHandle:
        fault_id = fault_id or f"{fault}-{next(self.counter)}"
        handle = FaultHandle(fault_id, fault, target, params, undo, self)
        self.active[fault_id] = handle
        if self.events is not None:
            self.events.publish("fault.applied", fault_id=fault_id, fault=fault, target=target, params=params)
        return handle

    def _healed(self, handle: FaultHandle) -> None:
        self.active.pop(handle.fault_id, None)
        if self.events is not None:
            self.events.publish("fault.healed", fault_id=handle.fault_id, fault=handle.fault,
                                target=handle.target, params=handle.params)

    def link(self, a: str, b: str) -> str:
        name = f"{a}->{b}"
        if name not in self.cluster.links:
            raise KeyError(f"no link {name}: links are {sorted(self.cluster.links)}")
        return name

    # -- network faults -----------------------------------------------------------------------------------
    async def _links_disable(self, names: list[str], fault: str, target: str,
                             params: dict[str, Any]) -> FaultHandle:
        for name in names:
            await self.proxy.proxy_update(name, enabled=False)

        async def undo() -> None:
            for name in names:
                await self.proxy.proxy_update(name, enabled=True)
        return self._applied(fault, target, {**params, "links": names}, undo)

    async def link_down(self, a: str, b: str, both: bool = False) -> FaultHandle:
        """Refuse connections from a to b (and close open ones); with `both`, b to a as well."""
        names = [self.link(a, b)] + ([self.link(b, a)] if both else [])
        return await self._links_disable(names, "link_down", f"{a}->{b}", {"both": both})

    async def partition(self, groups: list[list[str]]) -> FaultHandle:
        """No link between nodes of different groups works, in either direction."""
        names = []
        for g1, g2 in itertools.permutations(groups, 2):
            for a in g1:
                for b in g2:
                    if f"{a}->{b}" in self.cluster.links:
                        names.append(f"{a}->{b}")
        text = " | ".join(",".join(group) for group in groups)
        return await self._links_disable(sorted(set(names)), "partition", text, {"groups": groups})

    async def isolate(self, node: str) -> FaultHandle:
        """Cut every link to and from `node`, the coordinator's included."""
        names = [name for name in self.cluster.links if name.endswith(f"->{node}") or name.startswith(f"{node}->")]
        return await self._links_disable(sorted(names), "isolate", node, {})

    async def _toxic(self, fault: str, a: str, b: str, toxic_type: str, attributes: dict[str, Any],
                     stream: str = "downstream", both: bool = False) -> FaultHandle:
        names = [self.link(a, b)] + ([self.link(b, a)] if both else [])
        fault_id = f"{fault}-{next(self.counter)}"
        added: list[tuple[str, str]] = []
        for name in names:
            toxic = await self.proxy.toxic_add(name, toxic_type, attributes, stream=stream, name=fault_id)
            added.append((name, toxic["name"]))

        async def undo() -> None:
            for name, toxic_name in added:
                try:
                    await self.proxy.toxic_remove(name, toxic_name)
                except ToxiproxyError as error:
                    if error.status != 404:
                        raise
        return self._applied(fault, f"{a}->{b}", {**attributes, "stream": stream, "both": both}, undo, fault_id)

    async def latency(self, a: str, b: str, ms: int, jitter_ms: int = 0, both: bool = False) -> FaultHandle:
        return await self._toxic("latency", a, b, "latency", {"latency": ms, "jitter": jitter_ms}, both=both)

    async def bandwidth(self, a: str, b: str, kb_s: int, both: bool = False) -> FaultHandle:
        """Limit what b sends back to a (e.g. a snapshot stream pulled by a from b) to `kb_s` KB/s."""
        return await self._toxic("bandwidth", a, b, "bandwidth", {"rate": kb_s}, both=both)

    async def cut_after(self, a: str, b: str, bytes_count: int) -> FaultHandle:
        """Close each a->b connection after `bytes_count` bytes came back from b."""
        return await self._toxic("cut_after", a, b, "limit_data", {"bytes": bytes_count})

    async def timeout(self, a: str, b: str, timeout_ms: int = 0) -> FaultHandle:
        """Stop every byte from b back to a; close the connection after `timeout_ms` (0: hold it open)."""
        return await self._toxic("timeout", a, b, "timeout", {"timeout": timeout_ms})

    async def reset(self, a: str, b: str, timeout_ms: int = 0) -> FaultHandle:
        return await self._toxic("reset", a, b, "reset_peer", {"timeout": timeout_ms})

    async def slice(self, a: str, b: str, average_size: int = 64, size_variation: int = 32,
                    delay_us: int = 100) -> FaultHandle:
        return await self._toxic("slice", a, b, "slicer", {"average_size": average_size,
                                                          "size_variation": size_variation, "delay": delay_us})

    # -- process faults -----------------------------------------------------------------------------------
    async def node_kill(self, name: str) -> FaultHandle:
        await self.cluster.node_kill(name)
        self.killed.add(name)

        async def undo() -> None:
            self.killed.discard(name)
            await self.cluster.node_restart(name)
        return self._applied("node_kill", name, {}, undo)

    async def node_pause(self, name: str) -> FaultHandle:
        await self.cluster.node_pause(name)
        self.paused.add(name)

        async def undo() -> None:
            self.paused.discard(name)
            await self.cluster.node_resume(name)
        return self._applied("node_pause", name, {}, undo)

    async def node_resume(self, name: str) -> None:
        for handle in list(self.active.values()):
            if handle.fault == "node_pause" and handle.target == name:
                await handle.heal()
                return
        await self.cluster.node_resume(name)

    async def node_restart(self, name: str) -> FaultHandle:
        """Restart now (kill -9 and start with the same data); nothing to undo later."""
        await self.cluster.node_restart(name)

        async def undo() -> None:
            return None
        handle = self._applied("node_restart", name, {}, undo)
        await handle.heal()
        return handle

    # -- the event bus ------------------------------------------------------------------------------------
    async def broker_outage(self) -> FaultHandle:
        """Stop the MQTT broker: every connection drops, events published meanwhile are queued by their
        publishers (and those in flight lost); `heal()` starts it again and the queues drain."""
        await self.cluster.broker_stop()

        async def undo() -> None:
            await self.cluster.broker_start()
        return self._applied("broker_outage", "broker", {}, undo)

    # -- healing ------------------------------------------------------------------------------------------
    async def heal_all(self) -> list[str]:
        """Undo every fault still in force (the broker first, then the network, then processes); returns their
        ids."""
        handles = sorted(self.active.values(), key=lambda h: (h.fault != "broker_outage", h.fault.startswith("node_")))
        for handle in handles:
            await handle.heal()
        return [handle.fault_id for handle in handles]
