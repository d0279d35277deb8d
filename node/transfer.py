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
import itertools
import logging
from pathlib import Path
from typing import Any

import aiohttp

from node.errors import BadInput, NodeError, ServiceError
from node.shard import Operation, Shard, ShardView
from node.snapshot_format import shard_manifest, shard_tar_chunks, snapshot_read

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


def snapshot_length(shard: Shard, collection_config: dict[str, Any], collection: str, shard_id: int,
                    sample_count: int = 256) -> int:
    """The expected size of the shard's snapshot stream, for progress: a dry pack of a sample of points
    scaled to the whole shard (packing all of it would cost as much as the stream itself)."""
    points = list(itertools.islice(shard.points.items(), sample_count))
    info = shard.info()
    sample_view = ShardView(info, dict(points), {})
    manifest = shard_manifest(collection, shard_id, info, collection_config)
    empty_view = ShardView(info, {}, {})
    overhead = sum(len(chunk) for chunk in shard_tar_chunks(manifest, empty_view))
    if not points:
        return overhead
    sample_bytes = sum(len(chunk) for chunk in shard_tar_chunks(manifest, sample_view)) - overhead
    members = 1 + len(shard.points) * sample_bytes // len(points) // (1 << 20)
    return overhead + len(shard.points) * sample_bytes // len(points) + members * 1024


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


async def transfer_attempt(agent: Any, transfer: dict[str, Any], collection: Any, shard: Shard,
                           queue: UpdateQueue, attempt: int) -> None:
    node = agent.node
    settings = node.settings
    total = snapshot_length(shard, collection.config, collection.name, shard.shard_id)
    await report(agent, transfer, "progress", phase="queue_installed", attempt=attempt, bytes=0,
                 bytes_total=total)
    await phase_pause(agent, "queue_installed")
    request = transfer_body(transfer, attempt=attempt, bytes_total=total)
    watcher = asyncio.ensure_future(queue_watch(agent, transfer, queue, attempt))
    try:
        result = await agent.peer_call(transfer["to"], "/internal/transfers/recover", request,
                                       settings.transfer_timeout_s)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if queue.overflowed:
        raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
    await phase_pause(agent, "restored")
    await report(agent, transfer, "progress", phase="queued", attempt=attempt, queued=len(queue.items),
                 bytes=result.get("bytes", total), bytes_total=total)
    await report(agent, transfer, "partial", phase="partial", attempt=attempt)
    await replay(agent, transfer, queue)
    await report(agent, transfer, "progress", phase="queue_replayed", attempt=attempt,
                 queued=queue.total_count)
    await phase_pause(agent, "queue_replayed")
    await report(agent, transfer, "finish", phase="finished", attempt=attempt)
    await replay(agent, transfer, queue)


async def queue_watch(agent: Any, transfer: dict[str, Any], queue: UpdateQueue, attempt: int) -> None:
    """While the target restores, report how many updates the source has queued (when it changes)."""
    reported = 0
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        if queue.total_count != reported:
            reported = queue.total_count
            with contextlib.suppress(NodeError):
                await agent.coordinator_call("POST", "/internal/transfers/progress", transfer_body(
                    transfer, attempt=attempt, queued=reported))


async def replay(agent: Any, transfer: dict[str, Any], queue: UpdateQueue) -> None:
    """Send queued updates to the target in order, in batches, until the queue is empty."""
    path = f"/internal/collections/{transfer['collection']}/shards/{transfer['shard_id']}/apply"
    while queue.items:
        if queue.overflowed:
            raise TransferFailed(f"update queue overflowed ({queue.limit} updates)")
        batch = queue.take(REPLAY_BATCH_OPS)
        await agent.peer_call(transfer["to"], path, {"ops": batch, "durable": True},
                              agent.settings.forward_timeout_s * 2)


async def phase_pause(agent: Any, phase: str) -> None:
    """Scenarios can hold a transfer after a phase (`transfer_phase_pause_s` setting) to key faults to it."""
    pauses = agent.view.get("settings", {}).get("transfer_phase_pause_s") or {}
    delay = float(pauses.get(phase, 0) or 0)
    if delay > 0:
        await asyncio.sleep(min(delay, 60.0))


def describe(error: BaseException) -> str:
    if isinstance(error, NodeError):
        return error.message
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"


# --- target side -----------------------------------------------------------------------------------------

async def transfer_receive(agent: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Stream the source's shard snapshot, verify it, and swap it in (if the transfer is still on)."""
    from node.recovery import content_apply, temp_path
    node = agent.node
    name, shard_id, source = request["collection"], int(request["shard"]), int(request["from"])
    transfer = await transfer_registered(agent, request)
    collection = node.storage.get(name)
    if shard_id not in collection.shards:
        raise BadInput(f"Shard {shard_id} is not a local shard of this peer")
    path = temp_path(node)
    try:
        size = await stream_download(agent, transfer, source, path, int(request.get("bytes_total") or 0),
                                     int(request.get("attempt", 1)))
        content = await asyncio.to_thread(snapshot_read, path)
        if shard_id not in content.shards:
            raise ServiceError("the streamed snapshot has no data for the shard")
        async with node.shard_lock(name, -1000 - shard_id):
            await transfer_registered(agent, request)
            await content_apply(node, collection, content, [shard_id])
        manifest = content.shards[shard_id].manifest
        await report(agent, transfer, "progress", phase="restored", attempt=int(request.get("attempt", 1)),
                     bytes=size, bytes_total=size)
        return {"bytes": size, "digest": manifest["digest"], "points_count": manifest["points_count"]}
    finally:
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
                          attempt: int) -> int:
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
    assert node.session is not None
    async with node.session.get(url, headers=agent.headers, timeout=timeout) as response:
        if response.status != 200:
            raise TransferFailed(f"snapshot stream from {agent.peer_name(source)} answered HTTP "
                                 f"{response.status}")
        with path.open("wb") as file:
            async for chunk in response.content.iter_chunked(settings.chunk_bytes):
                file.write(chunk)
                size += len(chunk)
                step_bytes = max(total // PROGRESS_STEPS, 1)
                if loop.time() - last_report >= PROGRESS_INTERVAL_S or size // step_bytes > reported_step:
                    last_report = loop.time()
                    reported_step = size // step_bytes
                    await report(agent, transfer, "progress", phase="streaming", attempt=attempt, bytes=size,
                                 bytes_total=max(total, size))
    await report(agent, transfer, "progress", phase="streamed", attempt=attempt, bytes=size, bytes_total=size)
    return size
