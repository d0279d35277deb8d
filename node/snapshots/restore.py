"""Recovering from snapshots: fetch (URL, file, upload), verify, restore aside, swap in, apply the priority.

Order of work, so that bad input changes nothing: the file is fetched to a temporary name under the
snapshots directory; the checksum (when given) is checked; the archive is read and verified (safe member
names, counts, content digest) without writing anything; only then are shards rebuilt aside and swapped in.
On a clustered node the priority rules (docs/qdrant-semantics.md section 3) are applied by the coordinator
through the cluster agent; on a standalone node the recovered data always wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node import clock
from node.errors import (
    BadInput,
    BadRequest,
    ChecksumMismatch,
    Forbidden,
    FormatError,
    NodeError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceError,
    collection_not_found,
    rust_debug,
)
from node.plant import planted
from node.protocol import PRIORITIES
from node.service import LockKey, Node
from node.snapshots.files import file_sha256, snapshot_path
from node.snapshots.format import SnapshotContent, snapshot_read
from node.storage.collections import (
    PAYLOAD_SCHEMA_KEY,
    Collection,
    ShardData,
    config_from_request,
    payload_schema_from,
)
from node.storage.vectors import VectorSpec

TEMP_DIR = ".incoming"


def priority_parse(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in PRIORITIES:
        message = f"unknown variant `{value}`, expected one of {', '.join(f'`{p}`' for p in PRIORITIES)}"
        raise FormatError(f"{where}: {message}")
    return str(value)


def temp_path(node: Node) -> Path:
    directory = node.settings.snapshots_dir / TEMP_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f".{clock.token_hex(8)}.partial"


@contextlib.asynccontextmanager
async def fetched(node: Node, location: str, shard_dir: Path | None) -> AsyncIterator[Path]:
    """The snapshot at `location` as a local file; temporary downloads are removed afterwards.

    A collection takes a URL: http(s) is downloaded, `file://` must name an existing file inside the
    snapshots directory. A shard takes an http(s) URL or a bare name in its own snapshot folder; any other
    URL scheme, `file` included, is refused, as Qdrant refuses it."""
    parsed = urllib.parse.urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        path = temp_path(node)
        try:
            try:
                await download(node, location, path)
            except ServiceError as error:
                if shard_dir is None:
                    raise
                # Qdrant answers 400 for a shard snapshot URL it cannot reach (its openapi tests)
                raise BadInput(error.message) from error
            yield path
        finally:
            path.unlink(missing_ok=True)
        return
    if shard_dir is not None:
        if scheme:
            raise BadInput(f"Invalid snapshot URL {location}: URLs with {scheme} scheme are not supported")
        yield snapshot_path(shard_dir, location)
        return
    if scheme == "file":
        yield file_location(node, parsed)
        return
    raise BadRequest(f"URL {location} with scheme {scheme} is not supported")


def dot_segments_removed(path: str) -> str:
    """A URL path with `.` and `..` segments resolved, as a URL parser normalises it (`/a/../b` -> `/b`)."""
    kept: list[str] = []
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and kept:
                kept.pop()
            if last:
                kept.append("")
        else:
            kept.append(segment)
    return "/" + "/".join(kept)


def file_location(node: Node, parsed: urllib.parse.ParseResult) -> Path:
    """A `file://` URL checked in Qdrant's order: the host (none or localhost), that the file exists, then
    that it lies inside the snapshots directory (symbolic links and `..` resolved)."""
    if parsed.netloc.lower() not in ("", "localhost"):
        raise BadRequest("Invalid snapshot URI, file path must be absolute or on localhost")
    raw = urllib.parse.unquote(dot_segments_removed(parsed.path))
    path = Path(raw)
    if not path.exists():
        raise BadRequest(f"Snapshot file {rust_debug(raw)} does not exist")
    try:
        resolved = path.resolve(strict=True)
    except OSError as error:
        raise BadRequest(f"Failed to resolve snapshot path {rust_debug(raw)}: {error}") from error
    root = node.settings.snapshots_dir.resolve()
    if not resolved.is_relative_to(root):
        raise Forbidden(f"Snapshot file path must be inside the snapshots directory {rust_debug(str(root))}")
    if not resolved.is_file():
        raise BadRequest(f"Snapshot file {rust_debug(raw)} is not a file")
    return resolved


async def download(node: Node, url: str, path: Path) -> None:
    """Stream a URL to `path` in chunks, with a total timeout and a stall timeout."""
    assert node.session is not None
    settings = node.settings
    timeout = aiohttp.ClientTimeout(total=settings.download_timeout_s, sock_connect=5,
                                    sock_read=settings.download_stall_timeout_s)
    try:
        async with node.session.get(url, timeout=timeout) as response:
            if response.status >= 300:
                raise BadInput(f"Failed to download tar from {url}: HTTP {response.status}")
            with path.open("wb") as file:
                async for chunk in response.content.iter_chunked(settings.chunk_bytes):
                    file.write(chunk)
    except NodeError:
        raise
    except TimeoutError as error:
        raise RequestTimeout(f"Download of {url} timed out") from error
    except (aiohttp.ClientError, OSError) as error:
        raise ServiceError(f"Failed to download tar from {url}: {error}") from error


async def upload_receive(node: Node, request: web.Request) -> Path:
    """Stream the multipart field `snapshot` to a temporary file, never whole in memory (413 past limit)."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as error:
        raise BadRequest(f"Expected a multipart form with a `snapshot` file: {error}") from None
    limit = node.settings.max_upload_bytes
    while True:
        part = await reader.next()
        if part is None:
            raise BadRequest("Multipart form has no `snapshot` field")
        if getattr(part, "name", None) == "snapshot":
            break
    path = temp_path(node)
    size = 0
    try:
        with path.open("wb") as file:
            while chunk := await part.read_chunk(node.settings.chunk_bytes):  # type: ignore[union-attr]
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"Snapshot upload exceeds the limit of {limit} bytes")
                file.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def checksum_verify(path: Path, expected: str | None, swapped: bool) -> str:
    """Compare ignoring case. Qdrant words a mismatch two ways: a recover request gets 400 `Wrong input:
    Snapshot checksum mismatch: expected <given>, got <computed>`, an upload (`swapped`) 400 `Checksum
    mismatch: expected <computed>, actual <given>`."""
    actual = file_sha256(path)
    if expected is not None and expected.lower() != actual and not planted("recovery_skips_checksum"):  # plant
        if swapped:
            raise ChecksumMismatch(f"Checksum mismatch: expected {actual}, actual {expected}")
        raise BadInput(f"Snapshot checksum mismatch: expected {expected}, got {actual}")
    return actual


def compatible(collection: Collection, config: dict[str, Any]) -> None:
    if vectors_differ(collection.config, config) or collection.shard_number != config.get("shard_number"):
        raise BadInput("Snapshot is not compatible with existing collection: vectors config or "
                       "shard_number differ")


def vectors_differ(mine: dict[str, Any], theirs: Any) -> bool:
    """Whether a snapshot's dense or sparse vectors differ from the collection's (names, sizes, distances); a
    snapshot's config that does not parse differs."""
    try:
        return VectorSpec.from_config(mine) != VectorSpec.from_config(theirs)
    except (TypeError, ValueError, KeyError, AttributeError):
        return True


def shards_data(content: SnapshotContent, shard_ids: list[int]) -> dict[int, ShardData]:
    return {shard_id: ShardData(int(content.shards[shard_id].manifest.get("last_seq", 0)),
                                content.shards[shard_id].points, content.shards[shard_id].tombstones,
                                str(content.shards[shard_id].manifest["digest"]))
            for shard_id in shard_ids}


async def content_apply(node: Node, collection: Collection, content: SnapshotContent,
                        shard_ids: list[int]) -> None:
    """Swap the snapshot's data into the given local shards, all or none, even across a crash: every shard
    is built aside, then one committed swap puts them all in place (node/storage/swaps.py)."""
    data = shards_data(content, shard_ids)
    async with contextlib.AsyncExitStack() as locks:
        for shard_id in sorted(shard_ids):
            await locks.enter_async_context(node.lock(LockKey.shard_data(collection.name, shard_id)))
        prepared = await asyncio.to_thread(collection.shards_prepare, data)
        marker = collection.shards_swap(prepared, data)
        await asyncio.to_thread(collection.shards_swap_finish, marker)


def snapshot_config(content: SnapshotContent, every_shard: bool) -> dict[str, Any]:
    """The collection config of a collection snapshot, checked as create-collection checks a request, and
    its shards checked against it: none beyond `shard_number`, and (`every_shard`, a standalone node) every
    one it promises present. Raises BadInput before anything is written."""
    if content.manifest.get("kind") != "collection":
        raise BadInput("Invalid snapshot: a shard snapshot cannot recover a whole collection")
    given = content.manifest.get("config")
    if not isinstance(given, dict):
        raise BadInput("Invalid snapshot: its manifest holds no collection config")
    try:
        config = config_from_request(given)
    except NodeError as error:
        raise BadInput(f"Invalid snapshot: its collection config is not valid: {error.message}") from None
    indexes = payload_schema_from(given)  # the payload indexes travel with the collection, as in Qdrant
    if indexes:
        config[PAYLOAD_SCHEMA_KEY] = indexes
    promised = set(range(config["shard_number"]))
    beyond = sorted(set(content.shards) - promised)
    if beyond:
        raise BadInput(f"Invalid snapshot: it holds shards {beyond}, its config has shard_number "
                       f"{config['shard_number']}")
    missing = sorted(promised - set(content.shards))
    if every_shard and missing:
        raise BadInput(f"Invalid snapshot: no data for shards {missing} (a standalone node needs every shard)")
    for shard_id, shard in sorted(content.shards.items()):  # each shard's manifest holds the config it was made with
        shard_config = shard.manifest.get("config")
        if shard_config is not None and vectors_differ(config, shard_config):
            raise BadInput(f"Invalid snapshot: the vectors config of shard {shard_id} differs from its collection's")
    return config


async def collection_recover(node: Node, name: str, path: Path, checksum: str | None, priority: str | None,
                             swapped: bool) -> None:
    """Recover a collection from a snapshot file: wholly or not at all (a refused snapshot changes nothing;
    a new collection is built whole aside, an existing one has all its shards swapped in one step)."""
    actual = await asyncio.to_thread(checksum_verify, path, checksum, swapped)
    content = await asyncio.to_thread(snapshot_read, path)
    config = snapshot_config(content, every_shard=node.cluster is None)
    priority = priority or node.settings.default_priority
    if name in node.storage.collections:
        collection = node.storage.get(name)
        compatible(collection, config)
        if node.cluster is not None:
            await node.cluster.collection_recover(collection, content, priority)
        else:
            await content_apply(node, collection, content, sorted(content.shards))
    elif node.cluster is not None:
        await node.cluster.collection_create(name, config)
        await node.cluster.collection_recover(node.storage.get(name), content, priority)
    else:
        data = shards_data(content, sorted(content.shards))
        staging = await asyncio.to_thread(node.storage.collection_build, name, config, data)
        node.storage.collection_install(name, config, staging, data)
    node.events.publish("snapshot.recovered", collection=name, shard=None, name=path.name, checksum=actual,
                        priority=priority, size=path.stat().st_size)


async def shard_recover(node: Node, collection: Collection, shard_id: int, path: Path, checksum: str | None,
                        priority: str | None, swapped: bool) -> None:
    actual = await asyncio.to_thread(checksum_verify, path, checksum, swapped)
    content = await asyncio.to_thread(snapshot_read, path)
    if shard_id not in content.shards:
        raise BadInput(f"Invalid snapshot: it has no data for shard {shard_id}")
    shard_config = content.shards[shard_id].manifest.get("config") or {}
    if not isinstance(shard_config, dict) or (
            shard_config.get("vectors") is not None and vectors_differ(collection.config, shard_config)):
        raise BadInput("Snapshot is not compatible with existing collection: vectors config differs")
    priority = priority or node.settings.default_priority
    if node.cluster is not None:
        await node.cluster.shard_recover(collection, shard_id, content, priority)
    else:
        collection.shard_local(shard_id)
        await content_apply(node, collection, content, [shard_id])
    node.events.publish("snapshot.recovered", collection=collection.name, shard=shard_id, name=path.name,
                        checksum=actual, priority=priority, size=path.stat().st_size)


def collection_for_shard(node: Node, name: str, shard_id: int) -> Collection:
    collection = node.storage.collections.get(name)
    if collection is None:
        raise collection_not_found(name)
    if not 0 <= shard_id < collection.shard_number:
        raise NotFound(f"shard {shard_id} not found")
    return collection

