"""The target's end of a shard transfer: stream the source's shard snapshot through this node's proxy link
to a temporary file, check the digest recorded in it, and swap it in while the transfer is still on.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from node.errors import BadInput, NodeError, ServiceError
from node.protocol import TransferKey
from node.replication.agent import ClusterAgent
from node.replication.progress import PROGRESS_INTERVAL_S, Reporter, TransferFailed
from node.service import LockKey
from node.snapshots.format import snapshot_read
from node.snapshots.restore import content_apply, temp_path

PROGRESS_STEPS = 20  # also report at every 5 % of the expected bytes


async def transfer_receive(agent: ClusterAgent, request: dict[str, Any]) -> dict[str, Any]:
    """Stream the source's shard snapshot to a temporary file, verify it, and swap it in (if the transfer is
    still on). The file is then read through a populated memory map: the restored shard's points are
    slices of it, and the only other disk write is the new shard's base file."""
    node = agent.node
    name, shard_id, source = request["collection"], int(request["shard"]), int(request["from"])
    attempt = int(request.get("attempt", 1))
    transfer = await transfer_registered(agent, request)
    collection = node.storage.get(name)
    if shard_id not in collection.shards:
        raise BadInput(f"Shard {shard_id} is not a local shard of this peer")
    path = temp_path(node)
    try:
        async with Reporter(agent, transfer) as reporter:
            size = await stream_download(agent, transfer, source, path, int(request.get("bytes_total") or 0),
                                         attempt, reporter)
            content = await asyncio.to_thread(snapshot_read, path, False)
            if shard_id not in content.shards:
                raise ServiceError("the streamed snapshot has no data for the shard")
            async with node.lock(LockKey.transfer_receive(name, shard_id)):
                await transfer_registered(agent, request)
                await content_apply(node, collection, content, [shard_id])
            manifest = content.shards[shard_id].manifest
            reporter.progress(phase="restored", attempt=attempt, bytes=size, bytes_total=size)
            await reporter.flush()
            return {"bytes": size, "digest": manifest["digest"], "points_count": manifest["points_count"]}
    finally:
        await asyncio.to_thread(path.unlink, True)


async def transfer_registered(agent: ClusterAgent, request: dict[str, Any]) -> dict[str, Any]:
    """The transfer as this node's state has it, target in Recovery; refreshed once if missing."""
    key = TransferKey.of(request)
    for refresh in (False, True):
        if refresh:
            with contextlib.suppress(NodeError):
                await agent.pull()
        for transfer in agent.view["transfers"]:
            if TransferKey.of(transfer) == key:
                return dict(transfer)
    raise BadInput(f"transfer {key.text()} is not registered (aborted?): refusing to replace the shard")


async def stream_download(agent: ClusterAgent, transfer: dict[str, Any], source: int, path: Path, total: int,
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
