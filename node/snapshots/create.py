"""Creating snapshots: collection, shard and full-storage snapshots, and the on-the-fly shard stream.

Each snapshot is a point-in-time view of the shards taken in the event loop (a cheap copy), then packed and
written in a worker thread (node/snapshots/files.py writes atomically, with its `.checksum` sidecar). The
stream endpoint packs the same tar chunk by chunk and stores nothing.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

from node import clock
from node.errors import BadInput
from node.service import Node
from node.snapshots.files import NAMES, snapshot_write, timestamp_now, timestamp_text
from node.snapshots.format import (
    FORMAT_VERSION,
    collection_tar_chunks,
    full_tar_write,
    shard_manifest,
    shard_tar_chunks,
)
from node.storage.collections import Collection


def collection_snapshots_dir(node: Node, collection: str) -> Path:
    return node.settings.snapshots_dir / collection


def shard_snapshots_dir(node: Node, collection: str, shard_id: int) -> Path:
    return node.settings.snapshots_dir / collection / "shards" / str(shard_id)


def collection_chunks(node: Node, collection: Collection) -> Iterator[bytes | memoryview]:
    shards = {}
    for shard_id, shard in collection.shards.items():
        view = shard.view()
        shards[shard_id] = (shard_manifest(collection.name, shard_id, view.info, collection.config), view)
    manifest = {"format_version": FORMAT_VERSION, "kind": "collection", "collection": collection.name,
                "peer_id": node.peer_id, "config": collection.config, "shards": sorted(shards)}
    return collection_tar_chunks(manifest, shards, node.settings.chunk_bytes)


async def collection_snapshot_create(node: Node, collection: Collection) -> dict[str, Any]:
    directory = collection_snapshots_dir(node, collection.name)
    directory.mkdir(parents=True, exist_ok=True)
    chunks = collection_chunks(node, collection)
    with NAMES.reserved(directory, lambda ts: f"{collection.name}-{node.peer_id}-{ts}.snapshot") as name:
        description = await asyncio.to_thread(snapshot_write, directory, name, chunks)
    node.events.publish("snapshot.created", collection=collection.name, shard=None, name=name,
                        checksum=description.get("checksum"), size=description["size"], priority=None)
    return description


def shard_chunks(node: Node, collection: Collection, shard_id: int) -> Iterator[bytes | memoryview]:
    shard = collection.shard_local(shard_id)
    view = shard.view()
    manifest = shard_manifest(collection.name, shard_id, view.info, collection.config)
    return shard_tar_chunks(manifest, view, node.settings.chunk_bytes)


async def shard_snapshot_create(node: Node, collection: Collection, shard_id: int) -> dict[str, Any]:
    chunks = shard_chunks(node, collection, shard_id)
    directory = shard_snapshots_dir(node, collection.name, shard_id)
    directory.mkdir(parents=True, exist_ok=True)
    with NAMES.reserved(directory, lambda ts: f"{collection.name}-shard-{shard_id}-{ts}.snapshot") as name:
        description = await asyncio.to_thread(snapshot_write, directory, name, chunks)
    node.events.publish("snapshot.created", collection=collection.name, shard=shard_id, name=name,
                        checksum=description.get("checksum"), size=description["size"], priority=None)
    return description


async def full_snapshot_create(node: Node) -> dict[str, Any]:
    root = node.settings.snapshots_dir
    staging = root / f".full-{clock.token_hex(4)}.partial"  # one per request, even in the same second
    staging.mkdir(parents=True, exist_ok=True)
    try:
        files = {}
        for collection in list(node.storage.collections.values()):
            file_name = f"{collection.name}-{node.peer_id}-{timestamp_text(timestamp_now())}.snapshot"
            await asyncio.to_thread(snapshot_write, staging, file_name, collection_chunks(node, collection))
            files[collection.name] = staging / file_name
        with NAMES.reserved(root, lambda ts: f"full-snapshot-{ts}.snapshot") as name:
            description = await asyncio.to_thread(snapshot_write, root, name, full_chunks(staging, files))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    node.events.publish("snapshot.created", collection=None, shard=None, name=name,
                        checksum=description.get("checksum"), size=description["size"], priority=None)
    return description


def full_chunks(staging: Path, files: dict[str, Path]) -> Iterator[bytes | memoryview]:
    archive = staging / "full.tar"
    full_tar_write(archive, files)
    with archive.open("rb") as file:
        while chunk := file.read(1 << 20):
            yield chunk


async def shard_stream(node: Node, collection: Collection, shard_id: int) -> AsyncGenerator[bytes | memoryview, None]:
    """The shard snapshot tar, built on the fly from a point-in-time view of the shard.

    The shard keeps its points already packed, so building a chunk is a join and a CRC (well under a
    millisecond per MiB): it runs inline, between the writes, with no thread hop per chunk."""
    if shard_id not in collection.shards:
        collection.shard_check(shard_id)
        raise BadInput(f"Shard {shard_id} is not a local or queue proxy shard")
    chunks = shard_chunks(node, collection, shard_id)
    for chunk in chunks:
        yield chunk


def stream_file_name(collection: str, shard_id: int) -> str:
    return f"{collection}-shard-{shard_id}-{timestamp_text(timestamp_now())}.snapshot"
