"""A transfer's reports to the coordinator: each step (`report`) and the ordered stream of progress
reports (`Reporter`) that both ends of a transfer send while it runs. The coordinator publishes each as a
`transfer.phase` event; a 404 means it forgot the transfer (aborted meanwhile): `TransferGone`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

import aiohttp

from node.errors import NodeError
from node.replication.agent import ClusterAgent
from node.retry import Backoff, retry

log = logging.getLogger("shardsim.node")
PROGRESS_INTERVAL_S = 0.25
REPORT_ATTEMPTS = 20  # a step is tried this many times at most while the coordinator answers 5xx or nothing
REPORT_BACKOFF = Backoff(first_s=0.25, factor=2.0, max_s=2.0)


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

    async def send() -> None:
        if step in ("partial", "finish"):
            await agent.coordinator_change("POST", f"/internal/transfers/{step}", body)
        else:
            await agent.coordinator_call("POST", f"/internal/transfers/{step}", body)
    try:
        await retry(send, attempts=REPORT_ATTEMPTS, backoff=REPORT_BACKOFF, retry_on=(NodeError,),
                    give_up=lambda error: isinstance(error, NodeError) and error.status < 500)
    except NodeError as error:
        if error.status == 404:
            raise TransferGone() from error
        raise


class Reporter:
    """A transfer's progress reports, sent to the coordinator in order by one task, so that the transfer
    never waits for them (each is a state change at the coordinator). At most `limit` wait; a newer byte
    count replaces an unsent one of the same phase, phases are never dropped. `flush()` waits until
    everything queued was delivered (before a state change and before answering), and raises what
    delivering met (TransferGone once the coordinator forgot the transfer).

    The reporter owns its task in a TaskGroup: `async with Reporter(agent, transfer) as reporter:` starts
    it, leaving the block cancels and awaits it, and an unexpected error in it reaches the transfer."""

    def __init__(self, agent: ClusterAgent, transfer: dict[str, Any], limit: int = 64) -> None:
        self.agent = agent
        self.transfer = transfer
        self.limit = limit
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.error: TransferGone | None = None
        self.wake = asyncio.Event()
        self.done = asyncio.Event()
        self.done.set()
        self.tasks: asyncio.TaskGroup | None = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reporter:
        self.tasks = asyncio.TaskGroup()
        await self.tasks.__aenter__()
        self.task = self.tasks.create_task(self._run(), name=f"progress {transfer_body(self.transfer)}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Cancel and await the sending task; the block's own error goes on unchanged (not wrapped)."""
        assert self.tasks is not None and self.task is not None, "Reporter used outside its `async with`"
        self.task.cancel()
        tasks, self.tasks, self.task = self.tasks, None, None
        await tasks.__aexit__(None, None, None)

    def progress(self, **fields: Any) -> None:
        assert self.task is not None, "Reporter used outside its `async with`"
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


def describe(error: BaseException) -> str:
    if isinstance(error, NodeError):
        return error.message
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
