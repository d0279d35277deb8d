"""One named proxy: a listening socket, the links it accepted, and its toxics.

Part of `cluster.proxy`, owned by the `ProxyRegistry`. A proxy owns its link tasks (tracked, cancelled and
awaited on `stop`). `enabled: false` means the listener is closed (new connections are refused) and every
open link is closed; `start` binds again, on the port it had (port 0 is replaced by the real port at the
first start, as in Toxiproxy). Toxics added, updated or removed reach the open links at once.

Replayable: toxicity and jitter draw from a `random.Random` per link (one per toxic on it), seeded from the
proxy's, itself seeded from `node.clock.rng()`, so a simulation's seed replays every draw. Links and their
tasks are kept in insertion order, so they are closed in the order they were opened. In a simulation (no real
sockets) the listener binds the given port without `SO_REUSEADDR` and the listen address is kept as given.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from cluster.proxy import errors
from cluster.proxy.link import Link
from cluster.proxy.metrics import MetricsRow, ProxyMetrics
from cluster.proxy.toxics import Toxic, toxic_updated
from node import clock

STOP_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def address_split(address: str, what: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) -> (host, port); raises a 400 `ApiError` when malformed."""
    host, separator, port_text = address.rpartition(":")
    if not separator or not port_text.isdigit() or int(port_text) > 65535:
        raise errors.BAD_REQUEST_BODY.joined(f"invalid {what} address {address!r}, expected host:port")
    return host.strip("[]"), int(port_text)


def address_join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """A named TCP proxy from `listen` to `upstream`."""

    def __init__(self, name: str, listen: str, upstream: str, reuse_address: bool | None = None) -> None:
        """`reuse_address`: bind with SO_REUSEADDR; by default, in real mode only (a simulation has none)."""
        address_split(listen, "listen")
        self.upstream_address = address_split(upstream, "upstream")
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: list[Toxic] = []
        self.metrics = ProxyMetrics()
        self._rng = random.Random(clock.rng().getrandbits(64))
        self._reuse_address = not clock.simulated() if reuse_address is None else reuse_address
        self._server: asyncio.Server | None = None
        self._links: dict[Link, None] = {}  # insertion-ordered sets: closed in the order opened
        self._tasks: dict[asyncio.Task[None], None] = {}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }

    def metrics_row(self) -> MetricsRow:
        return MetricsRow(proxy=self.name, listen=self.listen, upstream=self.upstream, metrics=self.metrics)

    # -- lifecycle --

    async def start(self) -> None:
        """Bind the listener; raises `OSError` when the address cannot be bound."""
        if self.enabled:
            return
        host, port = address_split(self.listen, "listen")
        server = await asyncio.get_running_loop().create_server(
            self._link_accept, host or None, port, reuse_address=self._reuse_address
        )
        if server.sockets:  # real sockets: the address bound (port 0 becomes the port chosen)
            sock_host, sock_port = server.sockets[0].getsockname()[:2]
            self.listen = address_join(host if not host else sock_host, sock_port)
        elif port == 0:  # a simulated network has no ephemeral ports to read back
            server.close()
            raise OSError(f"proxy {self.name}: port 0 needs real sockets; give a port")
        self._server = server
        self.enabled = True

    async def stop(self) -> None:
        """Stop listening and close every open link."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.close(flush=False)
        await self._tasks_wait()
        if server is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await server.wait_closed()
            except TimeoutError:
                log.warning("proxy %s: listener not closed after %.0f s", self.name, STOP_TIMEOUT_S)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Change fields; a new listen or upstream restarts the proxy (and drops its links)."""
        if listen != self.listen or upstream != self.upstream:
            address_split(listen, "listen")
            upstream_address = address_split(upstream, "upstream")
            await self.stop()
            self.listen, self.upstream, self.upstream_address = listen, upstream, upstream_address
        if enabled and not self.enabled:
            await self.start()
        elif not enabled and self.enabled:
            await self.stop()

    async def _tasks_wait(self) -> None:
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        for task in tasks:  # in start order, not the pending set's (memory address) order
            if task in pending:
                task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _link_accept(self) -> asyncio.Protocol:
        link_rng = random.Random(self._rng.getrandbits(64))
        link = Link(self.upstream_address, self.metrics, link_rng, on_accepted=self._link_run)
        for toxic in self.toxics:
            link.toxic_offer(toxic, self.toxics)
        return link.client

    def _link_run(self, link: Link) -> None:
        if not self.enabled:
            link.close(flush=False)
        self._links[link] = None
        self.metrics.connections_total += 1
        self.metrics.connections_open += 1
        task = asyncio.get_running_loop().create_task(link.run(), name=f"proxy {self.name} link")
        self._tasks[task] = None
        task.add_done_callback(lambda done: self._link_done(link, done))

    def _link_done(self, link: Link, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._links.pop(link, None)
        self.metrics.connections_open -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("proxy %s: a link failed", self.name, exc_info=task.exception())

    # -- toxics --

    def _toxics_api_order(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in the order added (as Toxiproxy lists them)."""
        return [t for t in self.toxics if t.stream == "upstream"] + [
            t for t in self.toxics if t.stream == "downstream"
        ]

    def toxics_json(self) -> list[dict[str, Any]]:
        return [toxic.to_json() for toxic in self._toxics_api_order()]

    def toxic_get(self, name: str) -> Toxic:
        for toxic in self.toxics:
            if toxic.name == name:
                return toxic
        raise errors.TOXIC_NOT_FOUND

    def toxic_add(self, toxic: Toxic) -> Toxic:
        if any(existing.name == toxic.name for existing in self.toxics):
            raise errors.TOXIC_EXISTS
        self.toxics.append(toxic)
        for link in list(self._links):
            link.toxic_offer(toxic, self.toxics)
        return toxic

    def toxic_update(self, name: str, body: object) -> Toxic:
        current = self.toxic_get(name)
        updated = toxic_updated(current, body)
        self.toxics[self.toxics.index(current)] = updated
        for link in list(self._links):
            link.toxic_update(updated, updated.toxicity != current.toxicity, self.toxics)
        return updated

    def toxic_remove(self, name: str) -> None:
        toxic = self.toxic_get(name)
        self.toxics.remove(toxic)
        for link in list(self._links):
            link.toxic_remove(name, self.toxics)

    def toxics_reset(self) -> None:
        for toxic in list(self.toxics):
            self.toxic_remove(toxic.name)
