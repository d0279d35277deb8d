"""Collections routes, Qdrant-compatible: create, get, exists, list, delete, payload indexes; update and
aliases are accepted and answered as Qdrant would, but change nothing (no parameters to tune, no aliases).

A payload index changes no search (a plain scan needs none): it is recorded in the collection's config under
`payload_schema` (`{field: schema}`, carried by snapshots) and shown by collection info as Qdrant does,
`{field: {"data_type", "params"?, "points"}}`, `points` counting the collection's points with a value there.

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
from node.errors import AlreadyExists, FormatError
from node.service import Node
from node.storage.collections import (
    PAYLOAD_SCHEMA_KEY,
    PAYLOAD_SCHEMA_TYPES,
    Collection,
    config_from_request,
    payload_field_schema_valid,
    payload_schema_from,
)

HNSW_CONFIG = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0,
               "on_disk": False}
OPTIMIZER_CONFIG = {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
                    "max_segment_size": None, "memmap_threshold": None, "indexing_threshold": 10000,
                    "flush_interval_sec": 5, "max_optimization_threads": None}
WAL_CONFIG = {"wal_capacity_mb": 32, "wal_segments_ahead": 0}




def collection_info(collection: Collection, points_count: int, indexed: dict[str, int]) -> dict[str, Any]:
    """Qdrant's collection info; `indexed` is how many points have a value for each indexed field."""
    params = {"on_disk_payload": True, **collection.config}  # vectors, sparse_vectors and on_disk_payload as given
    params.pop(PAYLOAD_SCHEMA_KEY, None)
    return {"status": "green", "optimizer_status": "ok", "indexed_vectors_count": 0,
            "points_count": points_count, "segments_count": len(collection.shards),
            "config": {"params": params, "hnsw_config": HNSW_CONFIG, "optimizer_config": OPTIMIZER_CONFIG,
                       "wal_config": WAL_CONFIG, "quantization_config": None},
            "payload_schema": {field: payload_index_info(schema, indexed.get(field, 0))
                               for field, schema in sorted(payload_schema_of(collection).items())}}


def payload_schema_of(collection: Collection) -> dict[str, Any]:
    return payload_schema_from(collection.config)


def payload_index_info(schema: Any, points: int) -> dict[str, Any]:
    """`{"data_type", "params"?, "points"}` for a schema given as a name or as `{"type", ...params}`."""
    if isinstance(schema, dict):
        return {"data_type": schema["type"], "params": schema, "points": points}
    return {"data_type": schema, "points": points}


def payload_field_schema(body: dict[str, Any]) -> tuple[str, Any]:
    """The `field_name` and `field_schema` of a create-index body, checked as Qdrant's serde reads them."""
    field = body.get("field_name")
    if not isinstance(field, str) or not field:
        raise FormatError("Format error in JSON body: missing field `field_name`" if field is None else
                          "Format error in JSON body: field_name: expected a non-empty string")
    schema = body.get("field_schema")
    if not payload_field_schema_valid(schema):
        raise FormatError(f"Format error in JSON body: field_schema: expected one of "
                          f"{', '.join(PAYLOAD_SCHEMA_TYPES)} (or an object with such a `type`)")
    return field, schema


async def payload_points(node: Node, collection: Collection) -> dict[str, int]:
    """How many points of the collection have a (non-empty) value for each indexed field."""
    counts = {}
    for field in payload_schema_of(collection):
        request = {"kind": "count", "filter": {"must_not": [{"is_empty": {"key": field}}]}}
        counts[field] = sum(await node.read(collection, request))
    return counts


async def collections_list(request: web.Request) -> web.Response:
    names = sorted(node_of(request).storage.collections)
    return ok(request, {"collections": [{"name": name} for name in names]})


async def collection_get(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    counts = await node.read(collection, {"kind": "count"})
    return ok(request, collection_info(collection, sum(counts), await payload_points(node, collection)))


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


async def payload_index_change(node: Node, collection: Collection, field: str, schema: Any | None) -> None:
    """Record (or with `schema` None forget) a payload index: on every node of a cluster (through the
    coordinator, which pushes the new config), else in this node's config."""
    if node.cluster is not None:
        await node.cluster.payload_index_change(collection, field, schema)
        return
    indexes = payload_schema_of(collection)
    if schema is None:
        indexes.pop(field, None)
    else:
        indexes[field] = schema
    node.storage.config_set(collection, {**collection.config, PAYLOAD_SCHEMA_KEY: indexes})


async def payload_index_create(request: web.Request) -> web.Response:
    """Recorded in `payload_schema` (qdrant-client's `create_payload_index` works); no search changes."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    field, schema = payload_field_schema(await json_body(request))
    await payload_index_change(node, collection, field, schema)
    return ok(request, {"operation_id": 0, "status": "completed"})


async def payload_index_delete(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    await payload_index_change(node, collection, request.match_info["field"], None)
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
