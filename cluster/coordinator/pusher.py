"""Pushing the cluster state to nodes: one worker per peer sends the newest view, latest wins.

Each worker waits until the state changed, then POSTs the peer's view (`/internal/cluster/state`) through
the `coord->nX` proxy link, with a timeout. A node that misses pushes (down, partitioned) pulls the whole
state itself when it starts and every few seconds, so pushes are an optimisation of freshness, not the
only path. `wait_acks` lets an operation wait until the live peers applied a version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

log = logging.getLogger("shardsim.coordinator")


class Pusher:
    def __init__(self, session: aiohttp.ClientSession, view_for: Callable[[int], dict[str, Any]],
                 address_for: Callable[[int], str | None], timeout_s: float = 2.0,
                 headers: dict[str, str] | None = None) -> None:
        self.session = session
        self.view_for = view_for
        self.address_for = address_for
        self.timeout_s = timeout_s
        self.headers = headers or {}
        self.acked: dict[int, int] = {}
        self.reachable: dict[int, bool] = {}
        self.failed_version: dict[int, int] = {}  # the newest version whose push to the peer failed
        self.changed: dict[int, asyncio.Event] = {}
        self.acked_changed = asyncio.Condition()
        self.tasks: dict[asyncio.Task[None], None] = {}  # an insertion-ordered set: cancelled in start order

    def peer_ensure(self, peer_id: int, tasks: asyncio.TaskGroup) -> None:
        if peer_id not in self.changed:
            self.changed[peer_id] = asyncio.Event()
            task = tasks.create_task(self._worker(peer_id), name=f"push:{peer_id}")
            self.tasks[task] = None

    def poke(self) -> None:
        for event in self.changed.values():
            event.set()

    async def ack(self, peer_id: int, version: int) -> None:
        """A node reported (by push answer or pull) that it applied `version`."""
        self.reachable[peer_id] = True
        if version > self.acked.get(peer_id, -1):
            self.acked[peer_id] = version
        async with self.acked_changed:
            self.acked_changed.notify_all()

    async def unreachable(self, peer_id: int, version: int) -> None:
        self.reachable[peer_id] = False
        self.failed_version[peer_id] = max(version, self.failed_version.get(peer_id, -1))
        async with self.acked_changed:
            self.acked_changed.notify_all()

    async def _worker(self, peer_id: int) -> None:
        event = self.changed[peer_id]
        while True:
            await event.wait()
            event.clear()
            address = self.address_for(peer_id)
            if address is None:
                continue
            view = self.view_for(peer_id)
            try:
                async with self.session.post(f"http://{address}/internal/cluster/state", json=view,
                                             headers=self.headers,
                                             timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as response:
                    if response.status == 200:
                        body = await response.json()
                        await self.ack(peer_id, int(body.get("version", view["version"])))
                    else:
                        await self.unreachable(peer_id, int(view["version"]))
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                await self.unreachable(peer_id, int(view["version"]))
                log.debug("push to peer %s failed: %s", peer_id, error)

    async def wait_acks(self, version: int, peers: list[int], timeout_s: float) -> set[int]:
        """Wait until every peer acked `version` or failed its push (or the timeout); returns those that acked.

        Only a failed push of this version (or a newer one) excuses a peer: a failure of an older push (say,
        before the node was listening) must not, or the peer would be passed over while its push is on the way.
        """
        async def all_acked() -> None:
            async with self.acked_changed:
                await self.acked_changed.wait_for(lambda: all(
                    self.acked.get(p, -1) >= version or self.failed_version.get(p, -1) >= version
                    for p in peers))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_acked(), timeout_s)
        return {p for p in peers if self.acked.get(p, -1) >= version}
