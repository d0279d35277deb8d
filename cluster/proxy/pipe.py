"""One direction of one proxied connection: bytes from a source socket to a sink socket.

Part of `cluster.proxy`, owned by a `Link`. With no toxic in effect and nothing queued, a chunk goes
straight from the source's `data_received` to the sink's `write` (no task switch: this is what keeps the
added latency to tens of microseconds). Otherwise chunks queue, in order, for the pipe's worker, which
passes them through the stages (`stages.py`). Backpressure on every hop: the source stops reading while
the sink's write buffer is above its high-water mark or while the queue holds `QUEUE_BYTES_MAX`, so a
slow reader never makes the proxy buffer without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from cluster.proxy.metrics import ProxyMetrics
from cluster.proxy.stages import Stage

QUEUE_BYTES_MAX = 1 << 20


class PipeOwner(Protocol):
    """What a pipe may ask of its link."""

    def close(self, flush: bool = True) -> None: ...

    def reset(self) -> None: ...

    def pipe_eof_sent(self) -> None: ...


class Pipe:
    """Source -> stages -> sink for one direction (`upstream` or `downstream`)."""

    def __init__(self, direction: str, owner: PipeOwner, metrics: ProxyMetrics) -> None:
        self.direction = direction
        self.owner = owner
        self.metrics = metrics
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None
        self.stages: list[Stage] = []
        self.eof_sent = False
        self.closed = False
        self._items: deque[tuple[float, bytes | None]] = deque()
        self._queued_bytes = 0
        self._busy = False
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Event()
        self._sink_writable = asyncio.Event()
        self._sink_writable.set()
        self._pause_reasons: set[str] = set()

    # -- called by the endpoints (protocol callbacks) --

    def feed(self, data: bytes) -> None:
        self.metrics.received_bytes[self.direction] += len(data)
        if self.closed:
            return
        if not self.stages and not self._busy and not self._items:
            self._write(data)
            return
        self._items.append((asyncio.get_running_loop().time(), data))
        self._queued_bytes += len(data)
        self._wakeup.set()
        if self._queued_bytes >= QUEUE_BYTES_MAX:
            self._pause("queue")

    def feed_eof(self) -> None:
        if self.closed:
            return
        if not self.stages and not self._busy and not self._items:
            self._eof_forward()
            return
        self._items.append((asyncio.get_running_loop().time(), None))
        self._wakeup.set()

    def sink_pause(self, paused: bool) -> None:
        if paused:
            self._sink_writable.clear()
            self._pause("sink")
        else:
            self._sink_writable.set()
            self._resume("sink")

    # -- called by the stages --

    async def wait_changed(self, timeout_s: float | None) -> None:
        """Wait until the toxics change, the pipe closes, or `timeout_s` passes."""
        changed = self._changed
        if timeout_s is None:
            await changed.wait()
            return
        try:
            async with asyncio.timeout(timeout_s):
                await changed.wait()
        except TimeoutError:
            pass

    def link_close(self) -> None:
        self.owner.close(flush=True)

    def link_reset(self) -> None:
        self.owner.reset()

    # -- called by the link --

    def signal_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closed = True
        for stage in self.stages:
            stage.deactivate()
        self._items.clear()
        self._wakeup.set()
        self._sink_writable.set()
        self.signal_changed()

    async def run(self) -> None:
        """The worker: passes queued chunks through the stages until the pipe closes."""
        while not self.closed:
            if not self._items:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            arrival_s, data = self._items.popleft()
            self._busy = True
            try:
                if data is None:
                    await self._eof_through()
                else:
                    self._queued_bytes -= len(data)
                    if self._queued_bytes < QUEUE_BYTES_MAX:
                        self._resume("queue")
                    await self._through(data, arrival_s, list(self.stages), 0)
            finally:
                self._busy = False

    # -- internals --

    async def _through(self, data: bytes, arrival_s: float, stages: list[Stage], index: int) -> None:
        while index < len(stages) and stages[index].removed:
            index += 1
        if self.closed:
            return
        if index == len(stages):
            self._write(data)
            if not self._sink_writable.is_set():
                await self._sink_writable.wait()
            return

        async def emit(piece: bytes) -> None:
            await self._through(piece, arrival_s, stages, index + 1)

        await stages[index].data(data, arrival_s, emit)

    async def _eof_through(self) -> None:
        for stage in list(self.stages):
            if not stage.removed and not self.closed:
                await stage.eof()
        if not self.closed:
            self._eof_forward()

    def _write(self, data: bytes) -> None:
        assert self.sink is not None, "a pipe writes only once both sockets are connected"
        self.sink.write(data)
        self.metrics.sent_bytes[self.direction] += len(data)

    def _eof_forward(self) -> None:
        if self.sink is not None and self.sink.can_write_eof() and not self.sink.is_closing():
            self.sink.write_eof()
        self.eof_sent = True
        self.owner.pipe_eof_sent()

    def _pause(self, reason: str) -> None:
        if not self._pause_reasons and self.source is not None:
            self.source.pause_reading()
        self._pause_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons.discard(reason)
        if not self._pause_reasons and self.source is not None:
            self.source.resume_reading()
