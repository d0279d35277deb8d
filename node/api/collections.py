"""Collections routes, Qdrant-compatible: create, get, exists, list, delete; update, payload indexes and
aliases are accepted and answered as Qdrant would, but change nothing (no parameters to tune, no index
needed by a plain scan, no aliases).

On a clustered node, create and delete go to the coordinator, which places the replicas and pushes the new
cluster state to every node; the request returns once this node has applied that state.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.keys import node_of
from node.api.responses import json_body, ok
from node.api.validation import (
    collection_create_violations,
    collection_update_violations,
    raise_if_any,
    timeout_violations,
)
from node.errors import AlreadyExists
from node.storage.collections import Collection, config_from_request

HNSW_CONFIG = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0,
               "on_disk": False}
OPTIMIZER_CONFIG = {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
                    "max_segment_size": None, "memmap_threshold": None, "indexing_threshold": 10000,
                    "flush_interval_sec": 5, "max_optimization_threads": None}
WAL_CONFIG = {"wal_capacity_mb": 32, "wal_segments_ahead": 0}


def collection_info(collection: Collection, points_count: int) -> dict[str, Any]:
    params = {"on_disk_payload": True, **collection.config}  # vectors, sparse_vectors and on_disk_payload as given
    return {"status": "green", "optimizer_status": "ok", "indexed_vectors_count": 0,
            "points_count": points_count, "segments_count": len(collection.shards),
            "config": {"params": params, "hnsw_config": HNSW_CONFIG, "optimizer_config": OPTIMIZER_CONFIG,
                       "wal_config": WAL_CONFIG, "quantization_config": None},
            "payload_schema": {}}


async def collections_list(request: web.Request) -> web.Response:
    names = sorted(node_of(request).storage.collections)
    return ok(request, {"collections": [{"name": name} for name in names]})


async def collection_get(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    counts = await node.read(collection, {"kind": "count"})
    return ok(request, collection_info(collection, sum(counts)))


async def collection_exists(request: web.Request) -> web.Response:
    exists = request.match_info["collection"] in node_of(request).storage.collections
    return ok(request, {"exists": exists})


async def collection_create(request: web.Request) -> web.Response:
    """Checked in Qdrant's order: the name (the middleware), the body, the query, then the storage."""
    node = node_of(request)
    name = request.match_info["collection"]
    body = await json_body(request)
    raise_if_any("JSON body", collection_create_violations(body))
    raise_if_any("query parameters", timeout_violations(request.query))
    config = config_from_request(body)
    if name in node.storage.collections:
        raise AlreadyExists(f"Collection `{name}` already exists!")
    if node.cluster is not None:
        await node.cluster.collection_create(name, config)
    else:
        node.storage.create(name, config, local_shards=list(range(config["shard_number"])))
    return ok(request, True)


async def collection_update(request: web.Request) -> web.Response:
    node = node_of(request)
    body = await json_body(request, required=False)
    raise_if_any("JSON body", collection_update_violations(body))
    raise_if_any("query parameters", timeout_violations(request.query))
    node.storage.get(request.match_info["collection"])
    return ok(request, True)


async def collection_delete(request: web.Request) -> web.Response:
    """A collection that does not exist is no error: 200 `"result": false`, as Qdrant answers."""
    node = node_of(request)
    name = request.match_info["collection"]
    raise_if_any("query parameters", timeout_violations(request.query))
    if name not in node.storage.collections:
        return ok(request, False)
    if node.cluster is not None:
        await node.cluster.collection_delete(name)
    else:
        node.storage.delete(name)
    return ok(request, True)


async def payload_index_create(request: web.Request) -> web.Response:
    """Accepted and ignored: a plain scan needs no index (qdrant-client's `create_payload_index` works)."""
    node = node_of(request)
    node.storage.get(request.match_info["collection"])
    await json_body(request, required=False)
    return ok(request, {"operation_id": 0, "status": "completed"})


async def payload_index_delete(request: web.Request) -> web.Response:
    node_of(request).storage.get(request.match_info["collection"])
    return ok(request, {"operation_id": 0, "status": "completed"})


async def aliases_list(request: web.Request) -> web.Response:
    """shardsim has no aliases: the lists are always empty."""
    if "collection" in request.match_info:
        node_of(request).storage.get(request.match_info["collection"])
    return ok(request, {"aliases": []})


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_put("/collections/{collection}/index", payload_index_create)
    router.add_delete("/collections/{collection}/index/{field}", payload_index_delete)
    router.add_get("/aliases", aliases_list)
    router.add_get("/collections/{collection}/aliases", aliases_list)
    router.add_get("/collections", collections_list)
    router.add_get("/collections/{collection}", collection_get)
    router.add_get("/collections/{collection}/exists", collection_exists)
    router.add_put("/collections/{collection}", collection_create)
    router.add_patch("/collections/{collection}", collection_update)
    router.add_delete("/collections/{collection}", collection_delete)
