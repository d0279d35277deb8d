"""Points routes, Qdrant-compatible: upsert, retrieve, delete, set payload, count, scroll, query, search.

Request and response shapes follow Qdrant's REST API so that qdrant-client's `upsert`, `retrieve`,
`delete`, `count`, `scroll` and `query_points` work unmodified. An update with `wait=true` is answered only
once it is fsynced on `write_consistency_factor` replicas ("completed"); with `wait=false` it is applied
but not yet durable ("acknowledged").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.keys import node_of
from node.api.responses import json_body, ok, query_bool
from node.errors import BadInput, FormatError, NotFound
from node.protocol import vector_unpack
from node.storage.collections import Collection
from node.storage.points import delete_parse, id_sort_key, point_id_parse, upsert_parse, vector_parse


def update_result(operation_id: int, wait: bool) -> dict[str, Any]:
    return {"operation_id": operation_id, "status": "completed" if wait else "acknowledged"}


async def points_upsert(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    wait = query_bool(request, "wait", False)
    operations = upsert_parse(await json_body(request), collection)
    operation_id = await node.update(collection, operations, wait)
    return ok(request, update_result(operation_id, wait))


async def points_delete(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    wait = query_bool(request, "wait", False)
    body = await json_body(request)
    matching: list[Any] = []
    if "filter" in body and "points" not in body:
        matching = [pid for ids in await node.read(collection, {"kind": "ids", "filter": body["filter"]})
                    for pid in ids]
    operations = delete_parse(body, collection, matching)
    operation_id = await node.update(collection, operations, wait) if operations else 0
    return ok(request, update_result(operation_id, wait))


async def points_payload_set(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    wait = query_bool(request, "wait", False)
    body = await json_body(request)
    payload = body.get("payload")
    if not isinstance(payload, dict) or not isinstance(body.get("points"), list):
        raise FormatError("Format error in JSON body: expected `payload` and `points`")
    by_shard: dict[int, list[Any]] = {}
    for raw in body["points"]:
        point_id = point_id_parse(raw)
        by_shard.setdefault(collection.shard_of(point_id), []).append([point_id, payload])
    operations = {shard: ["set_payload", items] for shard, items in by_shard.items()}
    operation_id = await node.update(collection, operations, wait)
    return ok(request, update_result(operation_id, wait))


def with_flags(body: dict[str, Any], payload_default: bool, vector_default: bool) -> tuple[Any, Any]:
    with_payload = body.get("with_payload", payload_default)
    with_vector = body.get("with_vector", body.get("with_vectors", vector_default))
    return with_payload, with_vector


async def points_retrieve(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request)
    if not isinstance(body.get("ids"), list):
        raise FormatError("Format error in JSON body: missing field `ids`")
    ids = [point_id_parse(value) for value in body["ids"]]
    with_payload, with_vector = with_flags(body, True, False)
    records = await retrieve(node, collection, ids, with_payload, with_vector)
    by_id = {record["id"]: record for record in records}
    return ok(request, [by_id[pid] for pid in dict.fromkeys(ids) if pid in by_id])


async def retrieve(node: Any, collection: Collection, ids: list[Any], with_payload: Any,
                   with_vector: Any) -> list[dict[str, Any]]:
    request = {"kind": "retrieve", "ids": ids, "with_payload": with_payload, "with_vector": bool(with_vector)}
    return [record for shard_records in await node.read(collection, request) for record in shard_records]


async def point_get(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    point_id = point_id_parse(request.match_info["point_id"])
    records = await retrieve(node, collection, [point_id], True, True)
    if not records:
        raise NotFound(f"No point with id {point_id} found")
    return ok(request, records[0])


async def points_count(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request, required=False)
    counts = await node.read(collection, {"kind": "count", "filter": body.get("filter")})
    return ok(request, {"count": sum(counts)})


async def points_scroll(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request, required=False)
    limit = body.get("limit") or 10
    if not isinstance(limit, int) or limit < 1:
        raise BadInput("limit: must be a positive integer")
    offset = point_id_parse(body["offset"]) if body.get("offset") is not None else None
    with_payload, with_vector = with_flags(body, True, False)
    read = {"kind": "scroll", "filter": body.get("filter"), "offset": offset, "limit": limit,
            "with_payload": with_payload, "with_vector": bool(with_vector)}
    records = sorted((r for shard in await node.read(collection, read) for r in shard),
                     key=lambda record: id_sort_key(record["id"]))
    next_offset = records[limit]["id"] if len(records) > limit else None
    return ok(request, {"points": records[:limit], "next_page_offset": next_offset})


def query_vector(node: Any, collection: Collection, query: Any) -> Any:
    """A plain vector, `{"nearest": vector}`, or a point id whose vector is the query."""
    if isinstance(query, dict) and "nearest" in query:
        query = query["nearest"]
    if query is None or isinstance(query, list):
        return query if query is None else vector_unpack(vector_parse(query, collection.vector_size))
    point_id = point_id_parse(query)
    shard = collection.shards.get(collection.shard_of(point_id))
    record = shard.points.get(point_id) if shard is not None else None
    if record is None:
        raise NotFound(f"No point with id {point_id} found")
    return vector_unpack(record[0])


async def scored_points(request: web.Request, body: dict[str, Any], vector: Any) -> list[dict[str, Any]]:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    limit = body.get("limit") or 10
    offset = body.get("offset") or 0
    with_payload, with_vector = with_flags(body, False, False)
    distance = collection.config["vectors"]["distance"]
    read = {"kind": "query", "vector": vector, "distance": distance, "filter": body.get("filter"),
            "limit": limit, "offset": offset, "with_payload": with_payload, "with_vector": bool(with_vector)}
    points = [p for shard in await node.read(collection, read) for p in shard]
    if vector is not None:
        points.sort(key=lambda p: p["score"], reverse=distance not in ("Euclid", "Manhattan"))
    else:
        points.sort(key=lambda p: id_sort_key(p["id"]))
    return points[offset:offset + limit]


async def points_query(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request, required=False)
    vector = query_vector(node, collection, body.get("query"))
    return ok(request, {"points": await scored_points(request, body, vector)})


async def points_query_batch(request: web.Request) -> web.Response:
    """`{"searches": [QueryRequest, ...]}` -> one `{"points": [...]}` per request, in order."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request)
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise FormatError("Format error in JSON body: missing field `searches`")
    results = []
    for search in searches:
        vector = query_vector(node, collection, search.get("query"))
        results.append({"points": await scored_points(request, search, vector)})
    return ok(request, results)


async def points_search(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request)
    vector = vector_unpack(vector_parse(body.get("vector"), collection.vector_size))
    return ok(request, await scored_points(request, body, vector))


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_put("/collections/{collection}/points", points_upsert)
    router.add_post("/collections/{collection}/points", points_retrieve)
    router.add_post("/collections/{collection}/points/delete", points_delete)
    router.add_post("/collections/{collection}/points/payload", points_payload_set)
    router.add_post("/collections/{collection}/points/count", points_count)
    router.add_post("/collections/{collection}/points/scroll", points_scroll)
    router.add_post("/collections/{collection}/points/query", points_query)
    router.add_post("/collections/{collection}/points/query/batch", points_query_batch)
    router.add_post("/collections/{collection}/points/search", points_search)
    router.add_get("/collections/{collection}/points/{point_id}", point_get)
