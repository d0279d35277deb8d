"""Shard transfers by snapshot streaming (docs/qdrant-semantics.md section 5), driven by the source node.

Source (`transfer_drive`), for up to `transfer_attempts` attempts (`TRANSFER_RETRY_WAITS_S`: 1 s, then 2 s):
  1. queue every update applied to the local shard from now on (a bounded queue; overflow fails the attempt);
  2. ask the target to recover (`/internal/transfers/recover`): the target streams this node's shard
     snapshot (`GET /collections/{c}/shards/{s}/snapshot`) through its own proxy link, checks the content
     digest recorded in the snapshot, and swaps it in, reporting bytes streamed to the coordinator;
  3. ask the coordinator for target -> Partial (it waits until the nodes applied it);
  4. replay the queued updates to the target in order, and keep forwarding new ones;
  5. ask the coordinator to finish: target -> Active; a move drops the source replica.
After the last failed attempt the source asks the coordinator to abort the transfer. Every step is reported
to the coordinator, which publishes it as a `transfer.phase` event with the bytes streamed so far.
Updates reach the target by several paths (queue, forwarding); versions make their order irrelevant.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import aiohttp

from node.errors import NodeError
from node.plant import planted
from node.protocol import TRANSFER_RETRY_WAITS_S
from node.replication.agent import ClusterAgent
from node.replication.progress import (
    PROGRESS_INTERVAL_S,
    Reporter,
    TransferFailed,
    TransferGone,
    describe,
    report,
    transfer_body,
)
from node.retry import Backoff
from node.storage.shard import Operation, Shard

log = logging.getLogger("shardsim.node")
RETRY_BACKOFF = Backoff.fixed(*TRANSFER_RETRY_WAITS_S)
REPLAY_BATCH_OPS = 256


class UpdateQueue:
    """Updates applied at the source during a transfer, in order, bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: collections.deque[Operation] = collections.deque()
        self.overflowed = False
        self.added = asyncio.Event()
        self.total_count = 0

    def hook(self, seq: int, operation: Operation) -> None:
        if len(self.items) >= self.limit:
            self.overflowed = True
            return
        self.items.append(operation)
        self.total_count += 1
        self.added.set()

    def take(self, count: int) -> list[Operation]:
        taken: list[Operation] = []
        while self.items and len(taken) < count:
            taken.append(self.items.popleft())
        if not self.items:
            self.added.clear()
        return taken


def snapshot_length(shard: Shard) -> int:
    """The expected size of the shard's snapshot stream, for progress: the points' bytes, about 20 bytes
    of index per point, a tar header per member of points and the small members."""
    content_bytes = sum(len(data) for data in shard.packed.values())
    members = 1 + content_bytes // (1 << 20)
    return content_bytes + 20 * len(shard.packed) + members * 1024 + 8192


async def transfer_drive(agent: ClusterAgent, transfer: dict[str, Any]) -> None:
    """The source's driver (a background task owned by the node)."""
    node = agent.node
    name, shard_id, target = transfer["collection"], transfer["shard_id"], transfer["to"]
    attempts = node.settings.transfer_attempts - (1 if planted("two_attempts") else 0)  # plant: two_attempts
    reason = "unknown"
    for attempt in range(1, attempts + 1):
        collection = node.storage.collections.get(name)
        shard = collection.shards.get(shard_id) if collection else None
        if collection is None or shard is None:
            reason = "the source no longer holds the shard"
            break
        queue = UpdateQueue(node.settings.transfer_queue_size)
        shard.update_hooks.append(queue.hook)
        try:
            await transfer_attempt(agent, transfer, collection, shard, queue, attempt)
            return
        except TransferGone:
            return
        except (TransferFailed, NodeError, aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = describe(error)
            log.warning("transfer %s attempt %d failed: %s", transfer_body(transfer), attempt, reason)
            with contextlib.suppress(NodeError, TransferGone):
                await report(agent, transfer, "attempt_failed", phase="attempt_failed", attempt=attempt,
                             reason=reason)
        finally:
            with contextlib.suppress(ValueError):
                shard.update_hooks.remove(queue.hook)
        if attempt < attempts:
            await asyncio.sleep(RETRY_BACKOFF.wait_s(attempt))
    with contextlib.suppress(NodeError, TransferGone):
        await report(agent, transfer, "abort", reason=f"transmission failed after {attempts} attempts: {reason}")
    del target


async def transfer_attempt(agent: ClusterAgent, transfer: dict[str, Any], collection: Any, shard: Shard,
                           queue: UpdateQueue, attempt: int) -> None:
    async with Reporter(agent, transfer) as reporter:
        await transfer_steps(agent, transfer, shard, queue, attempt, reporter)


async def transfer_steps(agent: ClusterAgent, transfer: dict[str, Any], shard: Shard, queue: UpdateQueue, attempt: int,
                         reporter: Reporter) -> None:
    total = snapshot_length(shard)
    reporter.progress(phase="queue_installed", attempt=attempt, bytes=0, bytes_total=total)
    await phase_pause(agent, "queue_installed", reporter)
    request = transfer_body(transfer, attempt=attempt, bytes_total=total)
    result = await recover_watched(agent, transfer, request, queue, attempt, reporter)
    if queue.overflowed:
        raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
    await phase_pause(agent, "restored", reporter)
    reporter.progress(phase="queued", attempt=attempt, queued=len(queue.items), bytes=result.get("bytes", total),
                      bytes_total=total)
    await reporter.flush()
    await report(agent, transfer, "partial", phase="partial", attempt=attempt)
    if not planted("active_before_replay"):  # plant: active_before_replay (replayed after the finish below)
        await replay(agent, transfer, queue)
    reporter.progress(phase="queue_replayed", attempt=attempt, queued=queue.total_count)
    await phase_pause(agent, "queue_replayed", reporter)
    await reporter.flush()
    await report(agent, transfer, "finish", phase="finished", attempt=attempt)
    await replay(agent, transfer, queue)


async def recover_watched(agent: ClusterAgent, transfer: dict[str, Any], request: dict[str, Any],
                          queue: UpdateQueue, attempt: int, reporter: Reporter) -> Any:
    """Ask the target to stream and restore the snapshot, while a watcher task (owned by a TaskGroup here,
    cancelled and awaited when the target answers) reports how many updates the source has queued."""
    answer: Any = None
    failure: Exception | None = None
    async with asyncio.TaskGroup() as tasks:
        watcher = tasks.create_task(queue_watch(queue, attempt, reporter), name="transfer queue watch")
        try:
            answer = await agent.peer_call(transfer["to"], "/internal/transfers/recover", request,
                                           agent.settings.transfer_timeout_s)
        except Exception as error:  # raised below, after the watcher ended (the TaskGroup would wrap it)
            failure = error
        watcher.cancel()
    if reporter.error is not None:
        raise reporter.error  # the coordinator forgot the transfer meanwhile
    if failure is not None:
        raise failure
    return answer


async def queue_watch(queue: UpdateQueue, attempt: int, reporter: Reporter) -> None:
    """While the target restores, report how many updates the source has queued (when it changes); stop
    quietly once the coordinator forgot the transfer (the reporter keeps that error for the transfer)."""
    reported = 0
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        if queue.total_count != reported:
            reported = queue.total_count
            try:
                reporter.progress(attempt=attempt, queued=reported)
            except TransferGone:
                return


async def replay(agent: ClusterAgent, transfer: dict[str, Any], queue: UpdateQueue) -> None:
    """Send queued updates to the target in order, in batches, until the queue is empty."""
    path = f"/internal/collections/{transfer['collection']}/shards/{transfer['shard_id']}/apply"
    if planted("queue_not_replayed"):  # plant: queue_not_replayed
        queue.items.clear()
    while queue.items:
        if queue.overflowed:
            raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
        batch = queue.take(REPLAY_BATCH_OPS)
        await agent.peer_call(transfer["to"], path, {"ops": batch, "durable": True},
                              agent.settings.forward_timeout_s * 2)


async def phase_pause(agent: ClusterAgent, phase: str, reporter: Reporter) -> None:
    """Scenarios can hold a transfer after a phase (`transfer_phase_pause_s` setting) to key faults to it;
    the phase's report is delivered before the pause starts."""
    pauses = agent.view.get("settings", {}).get("transfer_phase_pause_s") or {}
    delay = float(pauses.get(phase, 0) or 0)
    if delay > 0:
        await reporter.flush()
        await asyncio.sleep(min(delay, 60.0))
