"""Points routes, Qdrant-compatible: upsert, delete, payload set/overwrite/delete/clear, vectors update/delete,
batches of these, retrieve, count and scroll (scored reads are in node/api/search.py).

Request and response shapes follow Qdrant's REST API so that qdrant-client's methods work unmodified. An
update is validated whole before anything is written (node/storage/updates.py); points selected by a filter
are resolved to ids first, so each shard operation names its points. An update with `wait=true` is
answered only once it is fsynced on `write_consistency_factor` replicas ("completed"); with `wait=false` it
is applied but not yet durable ("acknowledged").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.keys import node_of
from node.api.responses import json_body, ok, query_bool
from node.api.search import order_by_parse
from node.errors import BadRequest, FormatError, NotFound
from node.protocol import PointId
from node.storage.collections import Collection
from node.storage.filters import filter_compile
from node.storage.points import id_sort_key
from node.storage.updates import (
    Update,
    batch_parse,
    delete_parse,
    payload_parse,
    point_id_parse,
    upsert_parse,
    vectors_delete_parse,
    vectors_update_parse,
)
from node.storage.vectors import with_vector_parse


def update_result(operation_id: int, wait: bool) -> dict[str, Any]:
    return {"operation_id": operation_id, "status": "completed" if wait else "acknowledged"}


async def points_missing_check(node: Any, collection: Collection, ids: list[PointId]) -> None:
    """Qdrant answers 404 for an update naming a point that does not exist (nothing is written)."""
    read = {"kind": "retrieve", "ids": ids, "with_payload": False, "with_vector": False}
    found = {record["id"] for shard in await node.read(collection, read) for record in shard}
    for point_id in ids:
        if point_id not in found:
            raise NotFound(f"No point with id {point_id} found")


async def update_apply(node: Any, collection: Collection, update: Update, wait: bool) -> int:
    """Resolve the update's selection, then apply it as one operation per shard; its operation id."""
    ids = None
    if update.kind in ("upsert", "update_vectors") and update.filter is not None:
        if update.must_exist and update.ids:
            await points_missing_check(node, collection, list(dict.fromkeys(update.ids)))
        update.items = await items_conditional(node, collection, update.items, update.filter)
    elif update.filter is not None:
        shards = await node.read(collection, {"kind": "ids", "filter": update.filter})
        ids = [point_id for shard in shards for point_id in shard]
    elif update.must_exist and update.ids:
        await points_missing_check(node, collection, list(dict.fromkeys(update.ids)))
    operations = update.operations(collection, ids)
    if not operations:
        return 0
    return int(await node.update(collection, operations, wait))


async def items_conditional(node: Any, collection: Collection, items: list[list[Any]],
                            update_filter: dict[str, Any]) -> list[list[Any]]:
    """An upsert or vectors update with `update_filter`: existing points change only if they match it (an
    upsert still inserts new points)."""
    given = {"has_id": [item[0] for item in items]}
    existing = {pid for shard in await node.read(collection, {"kind": "ids", "filter": {"must": [given]}})
                for pid in shard}
    matching = {pid for shard in await node.read(collection, {"kind": "ids", "filter": {
        "must": [given, update_filter]}}) for pid in shard}
    return [item for item in items if item[0] not in existing or item[0] in matching]


def update_route(parse: Any) -> Any:
    """A route applying one update parsed from the body by `parse(body, collection)`."""
    async def handler(request: web.Request) -> web.Response:
        node = node_of(request)
        collection = node.storage.get(request.match_info["collection"])
        wait = query_bool(request, "wait", False)
        update = parse(await json_body(request), collection)
        return ok(request, update_result(await update_apply(node, collection, update, wait), wait))
    return handler


async def points_batch(request: web.Request) -> web.Response:
    """`POST /points/batch`: every operation validated first, then applied in order; one result each."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    wait = query_bool(request, "wait", False)
    updates = batch_parse(await json_body(request), collection)
    results = []
    for update in updates:
        results.append(update_result(await update_apply(node, collection, update, wait), wait))
    return ok(request, results)


def with_flags(body: dict[str, Any], collection: Collection, payload_default: bool) -> tuple[Any, Any]:
    with_payload = body.get("with_payload", payload_default)
    with_vector = with_vector_parse(body.get("with_vector", body.get("with_vectors")), collection.vector_spec)
    return with_payload, with_vector


async def retrieve(node: Any, collection: Collection, ids: list[Any], with_payload: Any,
                   with_vector: Any) -> list[dict[str, Any]]:
    request = {"kind": "retrieve", "ids": ids, "with_payload": with_payload, "with_vector": with_vector}
    return [record for shard_records in await node.read(collection, request) for record in shard_records]


async def points_retrieve(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request)
    if not isinstance(body.get("ids"), list):
        raise FormatError("Format error in JSON body: missing field `ids`")
    ids = [point_id_parse(value) for value in body["ids"]]
    with_payload, with_vector = with_flags(body, collection, True)
    records = await retrieve(node, collection, ids, with_payload, with_vector)
    by_id = {record["id"]: record for record in records}
    return ok(request, [by_id[pid] for pid in dict.fromkeys(ids) if pid in by_id])


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
    filter_compile(body.get("filter"))
    counts = await node.read(collection, {"kind": "count", "filter": body.get("filter")})
    return ok(request, {"count": sum(counts)})


async def points_scroll(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    body = await json_body(request, required=False)
    limit = body.get("limit") or 10
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise FormatError("Format error in JSON body: limit: expected a positive integer")
    filter_compile(body.get("filter"))
    with_payload, with_vector = with_flags(body, collection, True)
    common = {"filter": body.get("filter"), "limit": limit, "with_payload": with_payload,
              "with_vector": with_vector}
    if body.get("order_by") is not None:
        if body.get("offset") is not None:
            raise BadRequest("Can't use offset with order_by: paginate with order_by.start_from instead")
        _, key, descending, start = order_by_parse(body["order_by"], "order_by")
        shards = await node.read(collection, {"kind": "order_by", "key": key, "descending": descending,
                                              "start_from": start, **common})
        records = sorted((r for shard in shards for r in shard), key=lambda r: (
            -r["order_value"] if descending else r["order_value"], id_sort_key(r["id"])))[:limit]
        for record in records:
            del record["score"], record["version"]
        return ok(request, {"points": records, "next_page_offset": None})
    offset = point_id_parse(body["offset"]) if body.get("offset") is not None else None
    records = sorted((r for shard in await node.read(collection, {"kind": "scroll", "offset": offset, **common})
                      for r in shard), key=lambda record: id_sort_key(record["id"]))
    next_offset = records[limit]["id"] if len(records) > limit else None
    return ok(request, {"points": records[:limit], "next_page_offset": next_offset})


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_put("/collections/{collection}/points", update_route(upsert_parse))
    router.add_post("/collections/{collection}/points", points_retrieve)
    router.add_post("/collections/{collection}/points/delete", update_route(lambda b, c: delete_parse(b)))
    router.add_post("/collections/{collection}/points/payload",
                    update_route(lambda b, c: payload_parse(b, "set_payload")))
    router.add_put("/collections/{collection}/points/payload",
                   update_route(lambda b, c: payload_parse(b, "overwrite_payload")))
    router.add_post("/collections/{collection}/points/payload/delete",
                    update_route(lambda b, c: payload_parse(b, "delete_payload")))
    router.add_post("/collections/{collection}/points/payload/clear",
                    update_route(lambda b, c: payload_parse(b, "clear_payload")))
    router.add_put("/collections/{collection}/points/vectors", update_route(vectors_update_parse))
    router.add_post("/collections/{collection}/points/vectors/delete", update_route(vectors_delete_parse))
    router.add_post("/collections/{collection}/points/batch", points_batch)
    router.add_post("/collections/{collection}/points/count", points_count)
    router.add_post("/collections/{collection}/points/scroll", points_scroll)
    router.add_get("/collections/{collection}/points/{point_id}", point_get)
