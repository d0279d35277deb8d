"""What each toxic does to the bytes of one stream of one connection.

Part of `cluster.proxy`, used by `pipe.py`. A `Stage` is one toxic in effect on one pipe (one direction of
one connection); the pipe hands every chunk to its stages in order, each stage passes what it lets
through to the next with `emit`. Every wait is interruptible: when a toxic is removed or updated the pipe
signals a change and the waiting stage looks again, so toxics apply to open connections, as in Toxiproxy.
A stage drops bytes only where its toxic says so (timeout, reset_peer, limit_data beyond its limit).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from cluster.proxy.toxics import Toxic

Emit = Callable[[bytes], Awaitable[None]]
BANDWIDTH_SLICE_S = 0.1


class StageHost(Protocol):
    """What a stage may ask of the pipe it sits in."""

    async def wait_changed(self, timeout_s: float | None) -> None: ...

    def link_close(self) -> None: ...

    def link_reset(self) -> None: ...


class Stage:
    """A toxic in effect on one pipe; the base class is the `noop` toxic."""

    def __init__(self, toxic: Toxic, host: StageHost, rng: random.Random) -> None:
        self.toxic = toxic
        self.host = host
        self.rng = rng
        self.removed = False

    def attribute(self, key: str) -> int:
        return self.toxic.attributes.get(key, 0)

    def activate(self) -> None:
        """The toxic starts to apply to this connection."""

    def deactivate(self) -> None:
        """The toxic stops applying (removed, or the connection closed)."""
        self.removed = True

    def updated(self, toxic: Toxic) -> None:
        self.toxic = toxic

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        await emit(data)

    async def eof(self) -> None:
        """Called before the end of the stream passes on."""

    async def wait_s(self, duration_s: float) -> None:
        """Wait `duration_s` from now, or until removed."""
        deadline_s = asyncio.get_running_loop().time() + duration_s
        await self.wait_until(lambda: deadline_s)

    async def wait_until(self, deadline: Callable[[], float]) -> None:
        """Wait until the loop time `deadline()` (read again after each change) or until removed."""
        loop = asyncio.get_running_loop()
        while not self.removed:
            remaining_s = deadline() - loop.time()
            if remaining_s <= 0:
                return
            await self.host.wait_changed(remaining_s)


class LatencyStage(Stage):
    """Deliver each chunk `latency` +- `jitter` ms after it arrived (chunks stay in order)."""

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        jitter_ms = self.attribute("jitter")
        offset_ms = self.rng.uniform(-jitter_ms, jitter_ms) if jitter_ms > 0 else 0.0
        await self.wait_until(lambda: arrival_s + max(0.0, self.attribute("latency") + offset_ms) / 1000)
        await emit(data)


class BandwidthStage(Stage):
    """Pass at most `rate` KB/s (1 KB = 1000 bytes), in slices of 100 ms worth of bytes."""

    def __init__(self, toxic: Toxic, host: StageHost, rng: random.Random) -> None:
        super().__init__(toxic, host, rng)
        self._free_at_s = 0.0

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        offset = 0
        while offset < len(data):
            rate_bytes_s = self.attribute("rate") * 1000
            if self.removed or rate_bytes_s <= 0:
                await emit(data[offset:])
                return
            piece = data[offset : offset + max(1, int(rate_bytes_s * BANDWIDTH_SLICE_S))]
            offset += len(piece)
            self._free_at_s = max(self._free_at_s, loop.time()) + len(piece) / rate_bytes_s
            await self.wait_until(lambda: self._free_at_s)
            await emit(piece)


class SlowCloseStage(Stage):
    """Delay the end of the stream by `delay` ms."""

    async def eof(self) -> None:
        await self.wait_s(self.attribute("delay") / 1000)


class TimeoutStage(Stage):
    """Stop all data (dropped); close the connection after `timeout` ms, never when 0."""

    def __init__(self, toxic: Toxic, host: StageHost, rng: random.Random) -> None:
        super().__init__(toxic, host, rng)
        self._timer: asyncio.TimerHandle | None = None

    def activate(self) -> None:
        timeout_ms = self.attribute("timeout")
        if timeout_ms > 0:
            self._timer = asyncio.get_running_loop().call_later(timeout_ms / 1000, self.host.link_close)

    def deactivate(self) -> None:
        super().deactivate()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def updated(self, toxic: Toxic) -> None:
        super().updated(toxic)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.activate()

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        return None

    async def eof(self) -> None:
        while not self.removed:
            await self.host.wait_changed(None)


class ResetPeerStage(Stage):
    """On the first data, wait `timeout` ms, then reset the connection (TCP RST both ways)."""

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        await self.wait_s(self.attribute("timeout") / 1000)
        if self.removed:
            await emit(data)
            return
        self.host.link_reset()


class SlicerStage(Stage):
    """Cut each chunk into pieces of `average_size` +- `size_variation` bytes, `delay` us apart."""

    def _piece_sizes(self, total: int) -> list[int]:
        average = self.attribute("average_size")
        variation = min(abs(self.attribute("size_variation")), max(0, average - 1))
        sizes: list[int] = []
        while total > 0:
            size = min(total, max(1, average + self.rng.randint(-variation, variation)))
            sizes.append(size)
            total -= size
        return sizes

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        if self.attribute("average_size") <= 0:
            await emit(data)
            return
        offset = 0
        for size in self._piece_sizes(len(data)):
            if self.removed:
                break
            await emit(data[offset : offset + size])
            offset += size
            if offset < len(data) and self.attribute("delay") > 0:
                await self.wait_s(self.attribute("delay") / 1_000_000)
        if offset < len(data):
            await emit(data[offset:])


class LimitDataStage(Stage):
    """Let exactly `bytes` bytes through on this stream, then close the connection."""

    def __init__(self, toxic: Toxic, host: StageHost, rng: random.Random) -> None:
        super().__init__(toxic, host, rng)
        self._passed_bytes = 0

    async def data(self, data: bytes, arrival_s: float, emit: Emit) -> None:
        remaining = max(0, self.attribute("bytes") - self._passed_bytes)
        piece = data[:remaining]
        if piece:
            self._passed_bytes += len(piece)
            await emit(piece)
        if self._passed_bytes >= self.attribute("bytes"):
            self.host.link_close()


STAGE_CLASSES: dict[str, type[Stage]] = {
    "noop": Stage,
    "latency": LatencyStage,
    "bandwidth": BandwidthStage,
    "slow_close": SlowCloseStage,
    "timeout": TimeoutStage,
    "reset_peer": ResetPeerStage,
    "slicer": SlicerStage,
    "limit_data": LimitDataStage,
}


def stage_new(toxic: Toxic, host: StageHost, rng: random.Random) -> Stage:
    return STAGE_CLASSES[toxic.type](toxic, host, rng)
