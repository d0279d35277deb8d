"""A transfer's reports to the coordinator: each step (`report`) and the ordered stream of progress
reports (`Reporter`) that both ends of a transfer send while it runs. The coordinator publishes each as a
`transfer.phase` event; a 404 means it forgot the transfer (aborted meanwhile): `TransferGone`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import aiohttp

from node.errors import NodeError
from node.replication.agent import ClusterAgent

log = logging.getLogger("shardsim.node")
PROGRESS_INTERVAL_S = 0.25


class TransferFailed(Exception):
    pass


class TransferGone(Exception):
    """The coordinator no longer knows this transfer (aborted meanwhile): stop quietly."""


def transfer_body(transfer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"collection": transfer["collection"], "shard": transfer["shard_id"], "from": transfer["from"],
            "to": transfer["to"], **extra}


async def report(agent: ClusterAgent, transfer: dict[str, Any], step: str, **fields: Any) -> None:
    """Report a step to the coordinator (retried while it is unreachable, e.g. restarting)."""
    body = transfer_body(transfer, **fields)
    for attempt in range(20):
        try:
            if step in ("partial", "finish"):
                await agent.coordinator_change("POST", f"/internal/transfers/{step}", body)
            else:
                await agent.coordinator_call("POST", f"/internal/transfers/{step}", body)
            return
        except NodeError as error:
            if error.status == 404:
                raise TransferGone() from error
            if error.status < 500 or attempt == 19:
                raise
            await asyncio.sleep(min(0.25 * 2 ** attempt, 2.0))


class Reporter:
    """A transfer's progress reports, sent to the coordinator in order by one background task, so that the
    transfer never waits for them (each is a state change at the coordinator). At most `limit` wait; a
    newer byte count replaces an unsent one of the same phase, phases are never dropped. `flush()` waits
    until everything queued was delivered (before a state change and before answering), and raises what
    delivering met (TransferGone once the coordinator forgot the transfer)."""

    def __init__(self, agent: ClusterAgent, transfer: dict[str, Any], limit: int = 64) -> None:
        self.agent = agent
        self.transfer = transfer
        self.limit = limit
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.error: BaseException | None = None
        self.wake = asyncio.Event()
        self.done = asyncio.Event()
        self.done.set()
        self.task: asyncio.Task[None] | None = None

    def progress(self, **fields: Any) -> None:
        if self.error is not None:
            raise self.error
        if self.pending and self.pending[-1].get("phase") == fields.get("phase"):
            self.pending[-1] = fields  # a newer byte count of the same phase
        elif len(self.pending) >= self.limit:
            self.pending[-1] = fields
        else:
            self.pending.append(fields)
        self.done.clear()
        self.wake.set()
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending and self.error is None:
                fields = self.pending.popleft()
                try:
                    await report(self.agent, self.transfer, "progress", **fields)
                except TransferGone as error:
                    self.error = error
                except (NodeError, aiohttp.ClientError, TimeoutError, OSError) as error:
                    log.info("transfer progress not reported: %s", describe(error))
            self.pending.clear()
            self.done.set()

    async def flush(self) -> None:
        await self.done.wait()
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


def describe(error: BaseException) -> str:
    if isinstance(error, NodeError):
        return error.message
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
