"""Snapshot routes with Qdrant's paths, parameters and answers (docs/qdrant-semantics.md section 1).

Collection snapshots: list, create, download, delete, recover (location), upload.
Full-storage snapshots: list, create, download, delete.
Shard snapshots: list, create, download, delete, recover, upload, and the stream
`GET /collections/{c}/shards/{s}/snapshot` that stores nothing.
`wait=false` answers 202 `{"status": "accepted"}` and runs the work in the background; downloads answer
the raw bytes, and their errors are plain text, as Qdrant's actix server gives them.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from node.api.keys import PLAIN_ERRORS, node_of
from node.api.responses import accepted, body_string, json_body, multipart_check, ok, path_int, query_bool
from node.api.validation import checksum_param
from node.errors import BadRequest, Forbidden, FormatError, NodeError
from node.service import LockKey, Node
from node.snapshots import create, restore
from node.snapshots.files import snapshot_delete, snapshot_path, snapshots_list

log = logging.getLogger("shardsim.node")


async def maybe_background(request: web.Request, work: Callable[[], Awaitable[Any]]) -> web.Response:
    """Run `work` now (wait=true) or in the node's TaskGroup and answer 202 (wait=false)."""
    if query_bool(request, "wait", True):
        return ok(request, await work())

    async def logged() -> None:
        try:
            await work()
        except NodeError as error:
            log.warning("background snapshot work on %s failed: %s", request.path, error.text())
    node_of(request).background(logged(), f"snapshot {request.method} {request.path}")
    return accepted(request)


async def upload_receive(node: Node, request: web.Request) -> Path:
    """The uploaded `snapshot` file; a body that is no multipart form (aiohttp's reader raises ValueError) is
    400 `Multipart boundary is not found`, as actix-multipart answers a body not starting with its boundary."""
    try:
        return await restore.upload_receive(node, request)
    except ValueError:
        raise FormatError("Multipart boundary is not found") from None


async def file_response(request: web.Request, path: Path) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream",
                                           "Content-Disposition": f'attachment; filename="{path.name}"'})


# --- collection snapshots --------------------------------------------------------------------------------

async def collection_list(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    return ok(request, snapshots_list(create.collection_snapshots_dir(node, collection.name)))


async def collection_create(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["collection"]
    wait = query_bool(request, "wait", True)
    if wait:
        collection = node.storage.get(name)
        return ok(request, await create.collection_snapshot_create(node, collection))
    return await maybe_background(request, lambda: create.collection_snapshot_create(
        node, node.storage.get(name)))


async def collection_download(request: web.Request) -> web.StreamResponse:
    request[PLAIN_ERRORS] = True
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    directory = create.collection_snapshots_dir(node, collection.name)
    return await file_response(request, snapshot_path(directory, request.match_info["name"]))


async def collection_delete(request: web.Request) -> web.Response:
    node = node_of(request)
    name, snapshot = request.match_info["collection"], request.match_info["name"]

    async def work() -> bool:
        collection = node.storage.get(name)
        snapshot_delete(create.collection_snapshots_dir(node, collection.name), snapshot)
        node.events.publish("snapshot.deleted", collection=name, shard=None, name=snapshot, checksum=None,
                            priority=None, size=None)
        return True
    if query_bool(request, "wait", True):
        return ok(request, await work())
    return await maybe_background(request, work)


def url_recovery_check(node: Node, location: str) -> None:
    """With `enable_snapshot_url_recovery` off, an http(s) location is refused before anything is fetched
    (Qdrant's service setting, for SSRF-wary deployments); files and uploads still recover."""
    if not node.settings.enable_snapshot_url_recovery and \
            urllib.parse.urlparse(location).scheme.lower() in ("http", "https"):
        raise Forbidden("Snapshot recovery from remote URLs is disabled in the configuration")


async def collection_recover(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["collection"]
    wait = query_bool(request, "wait", True)
    body = await json_body(request)
    location = body_string(body, "location")
    if not urllib.parse.urlparse(location).scheme:  # Qdrant's `location` is a URL
        raise FormatError("Format error in JSON body: relative URL without a base")
    url_recovery_check(node, location)
    priority = restore.priority_parse(body.get("priority"), "Format error in JSON body")
    checksum = checksum_param(body.get("checksum"), "JSON body")

    async def work() -> bool:
        async with node.lock(LockKey.collection_recovery(name)):
            async with restore.fetched(node, location, None) as path:
                await restore.collection_recover(node, name, path, checksum, priority, swapped=False)
        return True
    if wait:
        return ok(request, await work())
    return await maybe_background(request, work)


async def collection_upload(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["collection"]
    multipart_check(request)  # Qdrant's extractors: the path, the multipart form, then the query
    wait = query_bool(request, "wait", True)
    priority = restore.priority_parse(request.query.get("priority"),
                                       "Deserialize error in query parameters")
    checksum = checksum_param(request.query.get("checksum"), "query parameters")
    path = await upload_receive(node, request)

    async def work() -> bool:
        try:
            async with node.lock(LockKey.collection_recovery(name)):
                await restore.collection_recover(node, name, path, checksum, priority, swapped=True)
        finally:
            await asyncio.to_thread(path.unlink, True)
        return True
    if wait:
        return ok(request, await work())
    return await maybe_background(request, work)


# --- full-storage snapshots ------------------------------------------------------------------------------

async def full_list(request: web.Request) -> web.Response:
    return ok(request, snapshots_list(node_of(request).settings.snapshots_dir))


async def full_create(request: web.Request) -> web.Response:
    node = node_of(request)
    return await maybe_background(request, lambda: create.full_snapshot_create(node))


async def full_download(request: web.Request) -> web.StreamResponse:
    request[PLAIN_ERRORS] = True
    node = node_of(request)
    return await file_response(request, snapshot_path(node.settings.snapshots_dir, request.match_info["name"]))


async def full_delete(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["name"]

    async def work() -> bool:
        snapshot_delete(node.settings.snapshots_dir, name)
        node.events.publish("snapshot.deleted", collection=None, shard=None, name=name, checksum=None,
                            priority=None, size=None)
        return True
    if query_bool(request, "wait", True):
        return ok(request, await work())
    return await maybe_background(request, work)


# --- shard snapshots -------------------------------------------------------------------------------------

def shard_target(node: Node, request: web.Request) -> tuple[Any, int]:
    shard_id = path_int(request, "shard")
    collection = restore.collection_for_shard(node, request.match_info["collection"], shard_id)
    return collection, shard_id


async def shard_list(request: web.Request) -> web.Response:
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    collection.shard_local(shard_id)
    return ok(request, snapshots_list(create.shard_snapshots_dir(node, collection.name, shard_id)))


async def shard_create(request: web.Request) -> web.Response:
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    collection.shard_local(shard_id)
    return await maybe_background(request, lambda: create.shard_snapshot_create(node, collection, shard_id))


async def shard_download(request: web.Request) -> web.StreamResponse:
    request[PLAIN_ERRORS] = True
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    directory = create.shard_snapshots_dir(node, collection.name, shard_id)
    return await file_response(request, snapshot_path(directory, request.match_info["name"]))


async def shard_delete(request: web.Request) -> web.Response:
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    name = request.match_info["name"]

    async def work() -> bool:
        snapshot_delete(create.shard_snapshots_dir(node, collection.name, shard_id), name)
        node.events.publish("snapshot.deleted", collection=collection.name, shard=shard_id, name=name,
                            checksum=None, priority=None, size=None)
        return True
    if query_bool(request, "wait", True):
        return ok(request, await work())
    return await maybe_background(request, work)


async def shard_recover(request: web.Request) -> web.Response:
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    body = await json_body(request)
    location = body_string(body, "location")
    priority = restore.priority_parse(body.get("priority"), "Format error in JSON body")
    checksum = checksum_param(body.get("checksum"), "JSON body")
    url_recovery_check(node, location)
    directory = create.shard_snapshots_dir(node, collection.name, shard_id)

    async def work() -> bool:
        async with node.lock(LockKey.shard_recovery(collection.name, shard_id)):
            async with restore.fetched(node, location, directory) as path:
                await restore.shard_recover(node, collection, shard_id, path, checksum, priority,
                                             swapped=False)
        return True
    return await maybe_background(request, work)


async def shard_upload(request: web.Request) -> web.Response:
    """The query is checked before the collection and shard, as Qdrant does: a malformed checksum is a 422
    even for a collection that does not exist, and nothing is received."""
    node = node_of(request)
    path_int(request, "shard")
    priority = restore.priority_parse(request.query.get("priority"),
                                       "Deserialize error in query parameters")
    checksum = checksum_param(request.query.get("checksum"), "query parameters")
    multipart_check(request)  # Qdrant's extractors: the path, the query, then the multipart form
    collection, shard_id = shard_target(node, request)
    path = await upload_receive(node, request)

    async def work() -> bool:
        try:
            async with node.lock(LockKey.shard_recovery(collection.name, shard_id)):
                await restore.shard_recover(node, collection, shard_id, path, checksum, priority, swapped=True)
        finally:
            await asyncio.to_thread(path.unlink, True)
        return True
    return await maybe_background(request, work)


async def shard_stream(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    collection, shard_id = shard_target(node, request)
    chunks = create.shard_stream(node, collection, shard_id)
    try:
        first = await anext(chunks)  # errors surface before the 200 is sent
        response = web.StreamResponse(headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{create.stream_file_name(collection.name, shard_id)}"'})
        await response.prepare(request)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await chunks.aclose()  # a client that hangs up mid-stream leaves no packing work behind


async def shard_partial_recover_from(request: web.Request) -> web.Response:
    """Qdrant's partial shard snapshot recovery from a peer: shardsim has no partial snapshots, but refuses a
    remote URL first, as Qdrant does, when URL recovery is disabled."""
    node = node_of(request)
    shard_target(node, request)
    body = await json_body(request)
    peer_url = body_string(body, "peer_url")
    if not urllib.parse.urlparse(peer_url).scheme:
        raise FormatError("Format error in JSON body: peer_url: relative URL without a base")
    url_recovery_check(node, peer_url)
    raise BadRequest("Partial snapshots are not supported by shardsim: recover a full shard snapshot instead")


def routes_add(router: web.UrlDispatcher) -> None:
    c = "/collections/{collection}"
    router.add_get(f"{c}/snapshots", collection_list)
    router.add_post(f"{c}/snapshots", collection_create)
    router.add_put(f"{c}/snapshots/recover", collection_recover)
    router.add_post(f"{c}/snapshots/upload", collection_upload)
    router.add_get(f"{c}/snapshots/{{name}}", collection_download)
    router.add_delete(f"{c}/snapshots/{{name}}", collection_delete)
    router.add_get("/snapshots", full_list)
    router.add_post("/snapshots", full_create)
    router.add_get("/snapshots/{name}", full_download)
    router.add_delete("/snapshots/{name}", full_delete)
    s = f"{c}/shards/{{shard}}"
    router.add_get(f"{s}/snapshots", shard_list)
    router.add_post(f"{s}/snapshots", shard_create)
    router.add_put(f"{s}/snapshots/recover", shard_recover)
    router.add_post(f"{s}/snapshots/upload", shard_upload)
    router.add_get(f"{s}/snapshots/{{name}}", shard_download)
    router.add_delete(f"{s}/snapshots/{{name}}", shard_delete)
    router.add_get(f"{s}/snapshot", shard_stream)
    router.add_post(f"{s}/snapshot/partial/recover_from", shard_partial_recover_from)
