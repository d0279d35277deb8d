"""One client connection through a proxy: the client socket, the upstream socket, and two pipes.

Part of `cluster.proxy`, owned by a `Proxy` (which runs `Link.run` as a tracked task). The link connects
to the upstream (with a timeout) while the client socket is paused, then lets both pipes flow. It decides,
once per toxic, whether the toxic applies to this connection (`toxicity` is the probability), and keeps
the toxics of its pipes in the proxy's order as toxics are added, updated and removed. An end of stream
is passed on as a half-close; the link closes when both directions have ended, when either socket is
lost, or when a toxic or the proxy says so. `reset` closes both sockets with a TCP RST (SO_LINGER 0).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import Callable

from cluster.proxy.metrics import ProxyMetrics
from cluster.proxy.pipe import Pipe
from cluster.proxy.stages import Stage, stage_new
from cluster.proxy.toxics import Toxic

CONNECT_TIMEOUT_S = 5.0
CLOSE_GRACE_S = 5.0
WRITE_BUFFER_BYTES_MAX = 1 << 20  # a socket's write buffer above this pauses the reading side

log = logging.getLogger(__name__)


class Endpoint(asyncio.Protocol):
    """One socket of a link: the source of one pipe and the sink of the other."""

    def __init__(self, link: Link, source_of: Pipe, sink_of: Pipe) -> None:
        self.link = link
        self.source_of = source_of
        self.sink_of = sink_of
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES_MAX, low=WRITE_BUFFER_BYTES_MAX // 4)
        self.source_of.source = transport
        self.sink_of.sink = transport
        self.link.endpoint_made(self)

    def data_received(self, data: bytes) -> None:
        self.source_of.feed(data)

    def eof_received(self) -> bool:
        self.source_of.feed_eof()
        return True

    def pause_writing(self) -> None:
        self.sink_of.sink_pause(True)

    def resume_writing(self) -> None:
        self.sink_of.sink_pause(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.link.endpoint_lost()


class Link:
    """A client connection and its upstream connection, with the toxics in effect on them."""

    def __init__(
        self,
        upstream: tuple[str, int],
        metrics: ProxyMetrics,
        rng: random.Random,
        on_accepted: Callable[[Link], None],
    ) -> None:
        self.upstream = upstream
        self.rng = rng
        self.pipes = {direction: Pipe(direction, self, metrics) for direction in ("upstream", "downstream")}
        self.client = Endpoint(self, source_of=self.pipes["upstream"], sink_of=self.pipes["downstream"])
        self.server = Endpoint(self, source_of=self.pipes["downstream"], sink_of=self.pipes["upstream"])
        self.closing = False
        self._on_accepted = on_accepted
        self._stages: dict[str, Stage] = {}
        self._closing_event = asyncio.Event()
        self._lost_event = asyncio.Event()

    # -- lifecycle --

    def endpoint_made(self, endpoint: Endpoint) -> None:
        if endpoint is self.client:
            assert endpoint.transport is not None
            endpoint.transport.pause_reading()
            self._on_accepted(self)

    def endpoint_lost(self) -> None:
        self.close(flush=True)
        made = [e for e in (self.client, self.server) if e.transport is not None]
        if all(e.lost for e in made):
            self._lost_event.set()

    async def run(self) -> None:
        """Connect upstream, let bytes flow until the link closes, then wait for both sockets to close."""
        try:
            if await self._upstream_connect():
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.pipes["upstream"].run())
                    group.create_task(self.pipes["downstream"].run())
            await self._closing_event.wait()
            try:
                async with asyncio.timeout(CLOSE_GRACE_S):
                    await self._lost_event.wait()
            except TimeoutError:
                log.warning("link to %s:%d: sockets still open after %.0f s, aborting", *self.upstream, CLOSE_GRACE_S)
        finally:
            self.close(flush=False)
            self._transports_abort()

    async def _upstream_connect(self) -> bool:
        host, port = self.upstream
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.get_running_loop().create_connection(lambda: self.server, host, port)
        except (OSError, TimeoutError) as error:
            log.info("upstream %s:%d unreachable (%s); closing the client connection", host, port, error)
            self.close(flush=False)
            return False
        if self.closing:
            self.close(flush=False)
            return False
        assert self.client.transport is not None
        self.client.transport.resume_reading()
        return True

    def pipe_eof_sent(self) -> None:
        if all(pipe.eof_sent for pipe in self.pipes.values()):
            self.close(flush=True)

    def close(self, flush: bool = True) -> None:
        """Close both sockets; `flush` lets bytes already written reach the peers first."""
        if not self.closing:
            self.closing = True
            for pipe in self.pipes.values():
                pipe.close()
            self._closing_event.set()
        for endpoint in (self.client, self.server):
            if endpoint.transport is not None and not endpoint.lost:
                if flush:
                    endpoint.transport.close()
                else:
                    endpoint.transport.abort()
        if not any(e.transport is not None and not e.lost for e in (self.client, self.server)):
            self._lost_event.set()

    def reset(self) -> None:
        """Close both sockets with a TCP RST: SO_LINGER on, 0 s, then close."""
        for endpoint in (self.client, self.server):
            if endpoint.transport is None or endpoint.lost:
                continue
            sock = endpoint.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close(flush=False)

    def _transports_abort(self) -> None:
        for endpoint in (self.client, self.server):
            if endpoint.transport is not None and not endpoint.lost:
                endpoint.transport.abort()

    # -- toxics --

    def toxic_offer(self, toxic: Toxic, order: list[Toxic]) -> None:
        """A toxic was added to the proxy: it applies to this link with probability `toxicity`."""
        if self.closing or self.rng.random() >= toxic.toxicity:
            return
        stage = stage_new(toxic, self.pipes[toxic.stream], random.Random(self.rng.getrandbits(64)))
        self._stages[toxic.name] = stage
        stage.activate()
        self._stages_order(toxic.stream, order)

    def toxic_update(self, toxic: Toxic, toxicity_changed: bool, order: list[Toxic]) -> None:
        stage = self._stages.get(toxic.name)
        if stage is not None and toxicity_changed and self.rng.random() >= toxic.toxicity:
            self.toxic_remove(toxic.name, order)
        elif stage is not None:
            stage.updated(toxic)
            self.pipes[toxic.stream].signal_changed()
        elif toxicity_changed:
            self.toxic_offer(toxic, order)

    def toxic_remove(self, name: str, order: list[Toxic]) -> None:
        stage = self._stages.pop(name, None)
        if stage is None:
            return
        stage.deactivate()
        self._stages_order(stage.toxic.stream, order)

    def _stages_order(self, stream: str, order: list[Toxic]) -> None:
        pipe = self.pipes[stream]
        pipe.stages = [self._stages[t.name] for t in order if t.stream == stream and t.name in self._stages]
        pipe.signal_changed()
