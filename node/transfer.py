"""Shard transfers by snapshot streaming (reference section 5), driven by the source node.

Source (`transfer_drive`), for up to `transfer_attempts` attempts (waits 1 s, then 2 s):
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
from pathlib import Path
from typing import Any

import aiohttp

from node.errors import BadInput, NodeError, ServiceError
from node.shard import Operation, Shard
from node.snapshot_format import snapshot_read

log = logging.getLogger("shardsim.node")
RETRY_WAITS_S = (1.0, 2.0)
REPLAY_BATCH_OPS = 256
PROGRESS_INTERVAL_S = 0.25
PROGRESS_STEPS = 20  # also report at every 5 % of the expected bytes


class TransferFailed(Exception):
    pass


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


def transfer_body(transfer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"collection": transfer["collection"], "shard": transfer["shard_id"], "from": transfer["from"],
            "to": transfer["to"], **extra}


def snapshot_length(shard: Shard) -> int:
    """The expected size of the shard's snapshot stream, for progress: the points' bytes, about 20 bytes
    of index per point, a tar header per member of points and the small members."""
    content_bytes = sum(len(data) for data in shard.packed.values())
    members = 1 + content_bytes // (1 << 20)
    return content_bytes + 20 * len(shard.packed) + members * 1024 + 8192


async def transfer_drive(agent: Any, transfer: dict[str, Any]) -> None:
    """The source's driver (a background task owned by the node)."""
    node = agent.node
    name, shard_id, target = transfer["collection"], transfer["shard_id"], transfer["to"]
    attempts = node.settings.transfer_attempts
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
            await asyncio.sleep(RETRY_WAITS_S[min(attempt - 1, len(RETRY_WAITS_S) - 1)])
    with contextlib.suppress(NodeError, TransferGone):
        await report(agent, transfer, "abort", reason=f"transmission failed after {attempts} attempts: {reason}")
    del target


class TransferGone(Exception):
    """The coordinator no longer knows this transfer (aborted meanwhile): stop quietly."""


async def report(agent: Any, transfer: dict[str, Any], step: str, **fields: Any) -> None:
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

    def __init__(self, agent: Any, transfer: dict[str, Any], limit: int = 64) -> None:
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


async def transfer_attempt(agent: Any, transfer: dict[str, Any], collection: Any, shard: Shard,
                           queue: UpdateQueue, attempt: int) -> None:
    reporter = Reporter(agent, transfer)
    try:
        await transfer_steps(agent, transfer, shard, queue, attempt, reporter)
    finally:
        await reporter.close()


async def transfer_steps(agent: Any, transfer: dict[str, Any], shard: Shard, queue: UpdateQueue, attempt: int,
                         reporter: Reporter) -> None:
    settings = agent.node.settings
    total = snapshot_length(shard)
    reporter.progress(phase="queue_installed", attempt=attempt, bytes=0, bytes_total=total)
    await phase_pause(agent, "queue_installed", reporter)
    request = transfer_body(transfer, attempt=attempt, bytes_total=total)
    watcher = asyncio.ensure_future(queue_watch(queue, attempt, reporter))
    try:
        result = await agent.peer_call(transfer["to"], "/internal/transfers/recover", request,
                                       settings.transfer_timeout_s)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if queue.overflowed:
        raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
    await phase_pause(agent, "restored", reporter)
    reporter.progress(phase="queued", attempt=attempt, queued=len(queue.items), bytes=result.get("bytes", total),
                      bytes_total=total)
    await reporter.flush()
    await report(agent, transfer, "partial", phase="partial", attempt=attempt)
    await replay(agent, transfer, queue)
    reporter.progress(phase="queue_replayed", attempt=attempt, queued=queue.total_count)
    await phase_pause(agent, "queue_replayed", reporter)
    await reporter.flush()
    await report(agent, transfer, "finish", phase="finished", attempt=attempt)
    await replay(agent, transfer, queue)


async def queue_watch(queue: UpdateQueue, attempt: int, reporter: Reporter) -> None:
    """While the target restores, report how many updates the source has queued (when it changes)."""
    reported = 0
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        if queue.total_count != reported:
            reported = queue.total_count
            reporter.progress(attempt=attempt, queued=reported)


async def replay(agent: Any, transfer: dict[str, Any], queue: UpdateQueue) -> None:
    """Send queued updates to the target in order, in batches, until the queue is empty."""
    path = f"/internal/collections/{transfer['collection']}/shards/{transfer['shard_id']}/apply"
    while queue.items:
        if queue.overflowed:
            raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
        batch = queue.take(REPLAY_BATCH_OPS)
        await agent.peer_call(transfer["to"], path, {"ops": batch, "durable": True},
                              agent.settings.forward_timeout_s * 2)


async def phase_pause(agent: Any, phase: str, reporter: Reporter) -> None:
    """Scenarios can hold a transfer after a phase (`transfer_phase_pause_s` setting) to key faults to it;
    the phase's report is delivered before the pause starts."""
    pauses = agent.view.get("settings", {}).get("transfer_phase_pause_s") or {}
    delay = float(pauses.get(phase, 0) or 0)
    if delay > 0:
        await reporter.flush()
        await asyncio.sleep(min(delay, 60.0))


def describe(error: BaseException) -> str:
    if isinstance(error, NodeError):
        return error.message
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"


# --- target side -----------------------------------------------------------------------------------------

async def transfer_receive(agent: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Stream the source's shard snapshot to a temporary file, verify it, and swap it in (if the transfer is
    still on). The file is then read through a populated memory map: the restored shard's points are
    slices of it, and the only other disk write is the new shard's base file."""
    from node.recovery import content_apply, temp_path
    node = agent.node
    name, shard_id, source = request["collection"], int(request["shard"]), int(request["from"])
    attempt = int(request.get("attempt", 1))
    transfer = await transfer_registered(agent, request)
    collection = node.storage.get(name)
    if shard_id not in collection.shards:
        raise BadInput(f"Shard {shard_id} is not a local shard of this peer")
    path = temp_path(node)
    reporter = Reporter(agent, transfer)
    try:
        size = await stream_download(agent, transfer, source, path, int(request.get("bytes_total") or 0),
                                     attempt, reporter)
        content = await asyncio.to_thread(snapshot_read, path, False)
        if shard_id not in content.shards:
            raise ServiceError("the streamed snapshot has no data for the shard")
        async with node.shard_lock(name, -1000 - shard_id):
            await transfer_registered(agent, request)
            await content_apply(node, collection, content, [shard_id])
        manifest = content.shards[shard_id].manifest
        reporter.progress(phase="restored", attempt=attempt, bytes=size, bytes_total=size)
        await reporter.flush()
        return {"bytes": size, "digest": manifest["digest"], "points_count": manifest["points_count"]}
    finally:
        await reporter.close()
        await asyncio.to_thread(path.unlink, True)


async def transfer_registered(agent: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The transfer as this node's state has it, target in Recovery; refreshed once if missing."""
    key = (request["collection"], int(request["shard"]), int(request["from"]), int(request["to"]))
    for refresh in (False, True):
        if refresh:
            with contextlib.suppress(NodeError):
                await agent.pull()
        for transfer in agent.view["transfers"]:
            if (transfer["collection"], transfer["shard_id"], transfer["from"], transfer["to"]) == key:
                return dict(transfer)
    raise BadInput(f"transfer {key[2]} -> {key[3]} of shard {key[1]} of `{key[0]}` is not registered "
                   f"(aborted?): refusing to replace the shard")


async def stream_download(agent: Any, transfer: dict[str, Any], source: int, path: Path, total: int,
                          attempt: int, reporter: Reporter) -> int:
    """Write the source's shard stream to `path`, read in chunks; returns its size."""
    node = agent.node
    settings = node.settings
    url = f"http://{agent.peer_address(source)}/collections/{transfer['collection']}/shards/" \
          f"{transfer['shard_id']}/snapshot"
    timeout = aiohttp.ClientTimeout(total=settings.transfer_timeout_s, sock_connect=5,
                                    sock_read=settings.download_stall_timeout_s)
    loop = asyncio.get_running_loop()
    size = 0
    last_report = 0.0
    reported_step = 0
    step_bytes = max(total // PROGRESS_STEPS, 1)
    assert node.session is not None
    async with node.session.get(url, headers=agent.headers, timeout=timeout) as response:
        if response.status != 200:
            raise TransferFailed(f"snapshot stream from {agent.peer_name(source)} answered HTTP "
                                 f"{response.status}")
        with path.open("wb") as file:
            async for chunk in response.content.iter_chunked(settings.chunk_bytes):
                file.write(chunk)
                size += len(chunk)
                if loop.time() - last_report >= PROGRESS_INTERVAL_S or size // step_bytes > reported_step:
                    last_report = loop.time()
                    reported_step = size // step_bytes
                    reporter.progress(phase="streaming", attempt=attempt, bytes=size, bytes_total=max(total, size))
    reporter.progress(phase="streamed", attempt=attempt, bytes=size, bytes_total=size)
    return size
