"""Scored reads, Qdrant-compatible: `/points/query` (and its batch), and the older `/points/search`,
`/points/recommend` and `/points/discover` (and their batches), which are translated into query requests.

A query request is checked whole first (vector names and dimensions, sparse vectors, filters, limits).
Examples given as point ids are then looked up (by the vector `using` names) and left out of the results,
as Qdrant does; the query runs on every shard (node/storage/search.py) and the shards' best are merged.
Prefetches run first: a fusion query (`rrf`, `dbsf`) fuses their rankings, any other query re-scores the
points they found. Scores are float32s printed as Qdrant prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from node import clock
from node.api.keys import node_of
from node.api.responses import json_body, ok
from node.errors import BadRequest, FormatError, NotFound, ValidationError
from node.protocol import PointId, point_id_normalize, sparse_unpack
from node.storage.collections import Collection
from node.storage.filters import filter_compile
from node.storage.search import (
    ascending,
    float32,
    fusion_dbsf,
    fusion_rrf,
    id_order,
    merged,
    mmr_rerank,
    scores_printed,
    unpack,
    vector_plain,
)
from node.storage.vectors import VectorSpec, dense_parse, sparse_parse, with_vector_parse

LIMIT_DEFAULT = 10
STRATEGIES = ("average_vector", "best_score", "sum_scores")


@dataclass
class QueryRequest:
    """One query, checked: `query` is None or a tagged tuple (see `query_parse`); examples are
    ("vector", floats) | ("sparse", {"indices", "values"}) | ("id", point id)."""
    query: tuple[Any, ...] | None
    using: str
    filter: dict[str, Any] | None
    limit: int
    offset: int
    score_threshold: float | None
    with_payload: Any
    with_vector: Any
    prefetch: list[QueryRequest] = field(default_factory=list)
    lookup_from: tuple[str, str | None] | None = None  # (collection, vector name): where ids are looked up


def limit_parse(value: Any, where: str, default: int = LIMIT_DEFAULT) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"Format error in JSON body: {where}: expected an unsigned integer")
    if value == 0:
        raise ValidationError(f"Validation error in JSON body: [{where}: value 0 invalid, must be 1 or larger]")
    return value


def example_parse(value: Any, spec: VectorSpec, using: str, where: str) -> tuple[str, Any]:
    """A vector given inline (checked against the `using` vector) or a point id."""
    if isinstance(value, list):
        if using not in spec.dense:
            spec.name_check(using)
            raise BadRequest(f"Vector `{using}` is sparse: a dense vector cannot query it")
        return "vector", list(unpack(dense_parse(value, spec.dense[using], where)))
    if isinstance(value, dict) and "indices" in value:
        if using not in spec.sparse:
            spec.name_check(using)
            raise BadRequest(f"Vector `{using}` is dense: a sparse vector cannot query it")
        indices, values = sparse_unpack(sparse_parse(value, where))
        return "sparse", dict(zip(indices, values, strict=True))
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return "id", point_id_normalize(value)
        except ValueError as error:
            raise FormatError(f"Format error in JSON body: {where}: {error}") from None
    raise FormatError(f"Format error in JSON body: {where}: expected a vector, a sparse vector or a point id")


def pairs_parse(value: Any, spec: VectorSpec, using: str, where: str) -> list[tuple[Any, Any]]:
    items = value if isinstance(value, list) else [value]
    pairs = []
    for number, pair in enumerate(items):
        if not isinstance(pair, dict) or "positive" not in pair or "negative" not in pair:
            raise FormatError(f"Format error in JSON body: {where}[{number}]: expected {{\"positive\", "
                              f"\"negative\"}}")
        pairs.append((example_parse(pair["positive"], spec, using, f"{where}[{number}].positive"),
                      example_parse(pair["negative"], spec, using, f"{where}[{number}].negative")))
    return pairs


def query_parse(value: Any, spec: VectorSpec, using: str, where: str = "query") -> tuple[Any, ...] | None:
    """Qdrant's QueryInterface as a tagged tuple: nearest, recommend, discover, context, order_by, fusion,
    sample."""
    if value is None:
        return None
    if not isinstance(value, dict) or "indices" in value:
        return "nearest", example_parse(value, spec, using, where)
    if "nearest" in value:
        nearest = example_parse(value["nearest"], spec, using, f"{where}.nearest")
        if value.get("mmr") is None:
            return "nearest", nearest
        return "nearest", nearest, mmr_parse(value["mmr"], f"{where}.mmr")
    if "recommend" in value:
        recommend = value["recommend"]
        if not isinstance(recommend, dict):
            raise FormatError(f"Format error in JSON body: {where}.recommend: expected an object")
        strategy = recommend.get("strategy") or "average_vector"
        if strategy not in STRATEGIES:
            raise FormatError(f"Format error in JSON body: {where}.recommend.strategy: unknown variant "
                              f"`{strategy}`")
        positive = [example_parse(v, spec, using, f"{where}.recommend.positive[{i}]")
                    for i, v in enumerate(recommend.get("positive") or [])]
        negative = [example_parse(v, spec, using, f"{where}.recommend.negative[{i}]")
                    for i, v in enumerate(recommend.get("negative") or [])]
        if not positive and not negative:
            raise ValidationError(f"Validation error in JSON body: [{where}.recommend: At least one positive or "
                                  f"negative example is required]")
        if strategy == "average_vector" and not positive:
            raise BadRequest("Positive vectors are required for the average_vector strategy")
        return "recommend", strategy, positive, negative
    if "discover" in value:
        discover = value["discover"]
        if not isinstance(discover, dict) or "target" not in discover:
            raise FormatError(f"Format error in JSON body: {where}.discover: expected {{\"target\", \"context\"}}")
        return ("discover", example_parse(discover["target"], spec, using, f"{where}.discover.target"),
                pairs_parse(discover.get("context") or [], spec, using, f"{where}.discover.context"))
    if "context" in value:
        return "context", pairs_parse(value["context"] or [], spec, using, f"{where}.context")
    if "order_by" in value:
        return order_by_parse(value["order_by"], f"{where}.order_by")
    if "fusion" in value:
        if value["fusion"] not in ("rrf", "dbsf"):
            raise FormatError(f"Format error in JSON body: {where}.fusion: unknown variant `{value['fusion']}`")
        return "fusion", value["fusion"], None
    if "rrf" in value:
        rrf = value["rrf"] or {}
        weights = rrf.get("weights") if isinstance(rrf, dict) else None
        return "fusion", "rrf", {"k": rrf.get("k") if isinstance(rrf, dict) else None, "weights": weights}
    if "sample" in value:
        if value["sample"] != "random":
            raise FormatError(f"Format error in JSON body: {where}.sample: unknown variant `{value['sample']}`")
        return ("sample",)
    raise BadRequest(f"Unsupported query {sorted(value)}: shardsim answers nearest, recommend, discover, context, "
                     f"order_by, fusion and sample queries")


def mmr_parse(value: Any, where: str) -> dict[str, Any]:
    """Maximal marginal relevance: `{"diversity": 0..1 (0.5), "candidates_limit": n (the limit)}`."""
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected an object")
    diversity = value.get("diversity")
    diversity = 0.5 if diversity is None else diversity
    if type(diversity) not in (int, float) or not 0 <= diversity <= 1:
        raise ValidationError(f"Validation error in JSON body: [{where}.diversity: value {diversity} invalid, must "
                              f"be from 0.0 to 1.0]")
    candidates = value.get("candidates_limit")
    if candidates is not None:
        candidates = limit_parse(candidates, f"{where}.candidates_limit")
    return {"diversity": float(diversity), "candidates_limit": candidates}


def order_by_parse(value: Any, where: str) -> tuple[Any, ...]:
    """`"key"` or `{"key", "direction": "asc" | "desc", "start_from"}`."""
    if isinstance(value, str):
        value = {"key": value}
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise FormatError(f"Format error in JSON body: {where}: expected a key or {{\"key\", \"direction\"}}")
    direction = value.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise FormatError(f"Format error in JSON body: {where}.direction: unknown variant `{direction}`")
    start = value.get("start_from")
    if start is not None and type(start) not in (int, float, str):
        raise FormatError(f"Format error in JSON body: {where}.start_from: expected a number or a datetime")
    return "order_by", value["key"], direction == "desc", start


def request_parse(body: Any, spec: VectorSpec, where: str = "", top: bool = True) -> QueryRequest:
    if not isinstance(body, dict):
        raise FormatError(f"Format error in JSON body: {where or 'body'}: expected an object")
    using = body.get("using") or ""
    if not isinstance(using, str):
        raise FormatError(f"Format error in JSON body: {where}using: expected a vector name")
    if using:
        spec.name_check(using)
    query = query_parse(body.get("query"), spec, using, f"{where}query")
    prefetch_given = body.get("prefetch")
    prefetch_bodies = prefetch_given if isinstance(prefetch_given, list) else (
        [prefetch_given] if prefetch_given is not None else [])
    prefetch = [request_parse(item, spec, f"{where}prefetch[{i}].", top=False) for i, item in enumerate(prefetch_bodies)]
    threshold = body.get("score_threshold")
    if threshold is not None and (type(threshold) not in (int, float)):
        raise FormatError(f"Format error in JSON body: {where}score_threshold: expected a number")
    if prefetch and query is None:
        raise BadRequest("A query is needed to merge the prefetches. Can't have prefetches without defining a "
                         "query.")
    if threshold is not None and query is None:
        raise BadRequest("A query is needed to use the score_threshold. Can't have score_threshold without "
                         "defining a query.")
    if threshold is not None and query is not None and query[0] == "order_by":
        raise BadRequest("Can't use score_threshold with an order_by query.")
    if query is not None and query[0] == "fusion" and not prefetch:
        raise BadRequest("A fusion query needs prefetches to fuse")
    filter_compile(body.get("filter"), f"{where}filter")
    params_check(body.get("params"), f"{where}params")
    offset = body.get("offset") or 0
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise FormatError(f"Format error in JSON body: {where}offset: expected an unsigned integer")
    lookup = body.get("lookup_from")
    if lookup is not None and (not isinstance(lookup, dict) or not isinstance(lookup.get("collection"), str)):
        raise FormatError(f"Format error in JSON body: {where}lookup_from: expected {{\"collection\", \"vector\"}}")
    return QueryRequest(query, using, body.get("filter"), limit_parse(body.get("limit"), f"{where or 'internal.'}limit"),
                        offset if top else 0, threshold, body.get("with_payload", False) if top else False,
                        with_vector_parse(body.get("with_vector", body.get("with_vectors")), spec) if top else False,
                        prefetch, (lookup["collection"], lookup.get("vector")) if lookup else None)


def params_check(params: Any, where: str) -> None:
    """Search `params` (HNSW and quantization tuning) change nothing in an exact scan, but are checked."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected an object")
    hnsw_ef = params.get("hnsw_ef")
    if hnsw_ef is not None:
        if not isinstance(hnsw_ef, int) or isinstance(hnsw_ef, bool) or hnsw_ef < 0:
            raise FormatError(f"Format error in JSON body: {where}.hnsw_ef: expected an unsigned integer")
        if hnsw_ef == 0:
            raise ValidationError(f"Validation error in JSON body: [{where}.hnsw_ef: value 0 invalid, must be 1 or "
                                  f"larger]")


# --- running a query --------------------------------------------------------------------------------------

def filter_and(*filters: dict[str, Any] | None) -> dict[str, Any] | None:
    given = [flt for flt in filters if flt]
    if not given:
        return None
    return given[0] if len(given) == 1 else {"must": given}


def examples_of(query: tuple[Any, ...]) -> list[tuple[str, Any]]:
    kind = query[0]
    if kind == "nearest":
        return [query[1]]
    if kind == "recommend":
        return [*query[2], *query[3]]
    if kind == "discover":
        return [query[1], *(example for pair in query[2] for example in pair)]
    if kind == "context":
        return [example for pair in query[1] for example in pair]
    return []


async def examples_resolve(node: Any, collection: Collection, query: tuple[Any, ...], using: str,
                           size: int | None) -> tuple[tuple[Any, ...], list[PointId]]:
    """Examples given as point ids replaced by their `using` vectors as stored (so an id and its vector
    given inline score the same); returns the query and those ids. `size`: the dimension the query needs."""
    ids = list(dict.fromkeys(value for kind, value in examples_of(query) if kind == "id"))
    if not ids:
        return query, []
    stored = await using_vectors(node, collection, ids, using)
    for point_id in ids:
        if point_id not in stored:
            raise NotFound(f"No point with id {point_id} found")

    def vector_of(example: tuple[str, Any]) -> tuple[str, Any]:
        kind, value = example
        if kind != "id":
            return example
        data = stored[value]
        if data is None:
            raise BadRequest(f"Point {value} has no vector `{using}`")
        plain = vector_plain(data)
        if isinstance(plain, dict):
            return "sparse", plain
        if size is not None and len(plain) != size:
            raise BadRequest(f"Vector dimension error: expected dim: {size}, got {len(plain)}")
        return "vector", plain

    kind = query[0]
    if kind == "nearest":
        return ("nearest", vector_of(query[1]), *query[2:]), ids
    if kind == "recommend":
        return ("recommend", query[1], [vector_of(e) for e in query[2]], [vector_of(e) for e in query[3]]), ids
    if kind == "discover":
        return ("discover", vector_of(query[1]), [(vector_of(p), vector_of(n)) for p, n in query[2]]), ids
    return ("context", [(vector_of(p), vector_of(n)) for p, n in query[1]]), ids


def average(examples: list[tuple[str, Any]]) -> tuple[str, Any]:
    if examples[0][0] == "sparse":
        total: dict[int, float] = {}
        for _, vector in examples:
            for index, value in vector.items():
                total[int(index)] = total.get(int(index), 0.0) + value
        return "sparse", {index: value / len(examples) for index, value in total.items()}
    size = len(examples[0][1])
    return "vector", [sum(vector[i] for _, vector in examples) / len(examples) for i in range(size)]


def average_with_negative(positive: list[tuple[str, Any]], negative: list[tuple[str, Any]]) -> tuple[str, Any]:
    """Qdrant's average_vector recommendation: avg(positive) + (avg(positive) - avg(negative))."""
    kind, mean = average(positive)
    if not negative:
        return kind, mean
    _, away = average(negative)
    if kind == "sparse":
        return kind, {i: 2 * mean.get(i, 0.0) - away.get(i, 0.0) for i in {*mean, *away}}
    return kind, [2 * a - b for a, b in zip(mean, away, strict=True)]


def shard_query_form(query: tuple[Any, ...]) -> list[Any]:
    """The resolved query as a shard query (node/storage/search.py); average_vector becomes nearest."""
    def plain(example: tuple[str, Any]) -> Any:
        return example[1]
    kind = query[0]
    if kind == "nearest":
        example = query[1]
        return ["nearest_sparse" if example[0] == "sparse" else "nearest", example[1]]
    if kind == "recommend":
        strategy, positive, negative = query[1], query[2], query[3]
        if strategy == "average_vector":
            return shard_query_form(("nearest", average_with_negative(positive, negative)))
        return ["recommend", strategy, [plain(e) for e in positive], [plain(e) for e in negative]]
    if kind == "discover":
        return ["discover", plain(query[1]), [[plain(p), plain(n)] for p, n in query[2]]]
    return ["context", [[plain(p), plain(n)] for p, n in query[1]]]


async def query_run(node: Any, collection: Collection, request: QueryRequest,
                    restrict: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The request's points, best first (offset and limit applied), scores as float32."""
    spec = collection.vector_spec
    if request.lookup_from is not None:
        node.storage.get(request.lookup_from[0])  # 404 for a collection that does not exist, whatever the query
    flt = filter_and(request.filter, restrict)
    query = request.query
    wanted = request.offset + request.limit
    common = {"filter": flt, "limit": wanted, "with_payload": request.with_payload,
              "with_vector": request.with_vector}
    if request.prefetch:
        results = [await query_run(node, collection, sub, restrict=flt) for sub in request.prefetch]
        if query is not None and query[0] == "fusion":
            options = query[2] or {}
            fused = fusion_dbsf(results) if query[1] == "dbsf" else fusion_rrf(
                results, options.get("weights"), int(options.get("k") or 2))
            fused = [p for p in fused if request.score_threshold is None
                     or p["score"] >= float32(request.score_threshold)]
            points = fused[request.offset:wanted]
            return await details_fill(node, collection, points, request)
        ids = list(dict.fromkeys(p["id"] for result in results for p in result))
        flt = filter_and(flt, {"must": [{"has_id": ids}]})
        common["filter"] = flt
    if query is None:
        shards = await node.read(collection, {"kind": "query", "query": None, **common})
        points = sorted((p for shard in shards for p in shard), key=lambda p: id_order(p["id"]))
        return points[request.offset:wanted]
    if query[0] == "order_by":
        read = {"kind": "order_by", "key": query[1], "descending": query[2], "start_from": query[3], **common}
        shards = await node.read(collection, read)
        points = sorted((p for shard in shards for p in shard), key=lambda p: (
            -p["order_value"] if query[2] else p["order_value"], id_order(p["id"])))
        return points[request.offset:wanted]
    if query[0] == "sample":
        shards = await node.read(collection, {"kind": "sample", "seed": clock.rng().randbytes(16), **common})
        points = sorted((p for shard in shards for p in shard), key=lambda p: p.pop("rank"))
        return points[request.offset:wanted]
    source, vector_name = collection, request.using
    if request.lookup_from is not None:
        source = node.storage.get(request.lookup_from[0])
        vector_name = request.lookup_from[1] or request.using
    dense = spec.dense.get(request.using)
    resolved, mentioned = await examples_resolve(node, source, query, vector_name, dense.size if dense else None)
    if mentioned and source is collection:
        common["filter"] = filter_and(common["filter"], {"must_not": [{"has_id": mentioned}]})
    distance = spec.distance(request.using)
    shard_form = shard_query_form(resolved)
    mmr = resolved[2] if resolved[0] == "nearest" and len(resolved) > 2 else None
    if mmr is not None:
        common["limit"] = mmr["candidates_limit"] or wanted
    read = {"kind": "query", "using": request.using, "distance": distance, "query": shard_form,
            "score_threshold": request.score_threshold, **common}
    shards = await node.read(collection, read)
    smaller = ascending(shard_form, distance)
    if mmr is None:
        return merged(shards, smaller, request.offset, request.limit)
    candidates = merged(shards, smaller, 0, int(common["limit"]))
    vectors = await using_vectors(node, collection, [p["id"] for p in candidates], request.using)
    chosen = mmr_rerank(candidates, vectors, shard_form[1], distance, mmr["diversity"], wanted)
    return chosen[request.offset:wanted]


async def using_vectors(node: Any, collection: Collection, ids: list[PointId], using: str) -> dict[PointId, Any]:
    """The `using` vector of each point, as a shard holds it (dense float32 bytes or packed sparse)."""
    read = {"kind": "vectors", "ids": ids, "using": using}
    return {point_id: vector for shard in await node.read(collection, read) for point_id, vector in shard}


async def details_fill(node: Any, collection: Collection, points: list[dict[str, Any]],
                       request: QueryRequest) -> list[dict[str, Any]]:
    """Payload and vectors of fused points, as the top-level request asks for them."""
    if not points:
        return points
    read = {"kind": "retrieve", "ids": [p["id"] for p in points], "with_payload": request.with_payload,
            "with_vector": request.with_vector}
    found = {r["id"]: r for shard in await node.read(collection, read) for r in shard}
    return [{**p, "payload": found.get(p["id"], {}).get("payload"), "vector": found.get(p["id"], {}).get("vector")}
            for p in points]


def points_out(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return scores_printed(points)


# --- routes ----------------------------------------------------------------------------------------------

async def points_query(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    parsed = request_parse(await json_body(request, required=False), collection.vector_spec)
    return ok(request, {"points": points_out(await query_run(node, collection, parsed))})


async def points_query_batch(request: web.Request) -> web.Response:
    """`{"searches": [QueryRequest, ...]}` -> one `{"points": [...]}` per request, in order."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    searches = (await json_body(request)).get("searches")
    if not isinstance(searches, list):
        raise FormatError("Format error in JSON body: missing field `searches`")
    parsed = [request_parse(search, collection.vector_spec, f"searches[{i}].") for i, search in enumerate(searches)]
    return ok(request, [{"points": points_out(await query_run(node, collection, one))} for one in parsed])


def search_body(body: dict[str, Any]) -> dict[str, Any]:
    """A `/points/search` body as a query body: `vector` is a vector, or `{"name", "vector"}`."""
    vector = body.get("vector")
    using = ""
    if isinstance(vector, dict) and "name" in vector:
        using, vector = vector["name"], vector.get("vector")
    if vector is None:
        raise FormatError("Format error in JSON body: missing field `vector`")
    return {**body, "query": {"nearest": vector}, "using": using}


def recommend_body(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "query": {"recommend": {"positive": body.get("positive") or [],
                                            "negative": body.get("negative") or [],
                                            "strategy": body.get("strategy")}}}


def discover_body(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("target") is None:
        return {**body, "query": {"context": body.get("context") or []}}
    return {**body, "query": {"discover": {"target": body["target"], "context": body.get("context") or []}}}


def legacy_route(translate: Any, batch: bool) -> Any:
    async def handler(request: web.Request) -> web.Response:
        node = node_of(request)
        collection = node.storage.get(request.match_info["collection"])
        body = await json_body(request)
        bodies = body.get("searches") if batch else [body]
        if not isinstance(bodies, list) or not all(isinstance(b, dict) for b in bodies):
            raise FormatError("Format error in JSON body: missing field `searches`")
        parsed = [request_parse(translate(b), collection.vector_spec) for b in bodies]
        results = [points_out(await query_run(node, collection, one)) for one in parsed]
        return ok(request, results if batch else results[0])
    return handler


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_post("/collections/{collection}/points/query", points_query)
    router.add_post("/collections/{collection}/points/query/batch", points_query_batch)
    router.add_post("/collections/{collection}/points/search", legacy_route(search_body, False))
    router.add_post("/collections/{collection}/points/search/batch", legacy_route(search_body, True))
    router.add_post("/collections/{collection}/points/recommend", legacy_route(recommend_body, False))
    router.add_post("/collections/{collection}/points/recommend/batch", legacy_route(recommend_body, True))
    router.add_post("/collections/{collection}/points/discover", legacy_route(discover_body, False))
    router.add_post("/collections/{collection}/points/discover/batch", legacy_route(discover_body, True))

