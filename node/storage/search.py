"""Scoring by a plain scan of one shard, and merging the shards' answers (pure functions, no I/O).

A shard query (`shard_query`) is plain data, so it can be sent to the peer holding an Active replica:
`{"using": name, "distance", "query": [kind, ...], "filter", "limit", "score_threshold", "with_payload",
"with_vector"}` where the query is one of
    ["nearest", dense floats]           distance of the named dense vector
    ["nearest_sparse", {index: value}]  dot product over the indices both share (no shared index: no score)
    ["recommend", strategy, positives, negatives]   average_vector is resolved by the caller into nearest;
                                        best_score and sum_scores score each point against every example
    ["discover", target, [[positive, negative], ...]] and ["context", [[positive, negative], ...]]
Examples given as point ids are resolved into vectors by the caller. Points without the `using` vector
are not scored. Scores are float32 as Qdrant's, and `score_threshold` keeps scores at least as good.
"""

from __future__ import annotations

import heapq
import math
import operator
import struct
from collections.abc import Callable
from typing import Any

from node.protocol import PointId
from node.storage.filters import filter_compile
from node.storage.payload import payload_select
from node.storage.vectors import float32_shortest, vectors_out

Similarity = Callable[[Any], float | None]  # a stored vector -> its score (None: not comparable)
_F32 = struct.Struct("<f")
_UNPACKERS: dict[int, struct.Struct] = {}
SMALLER_IS_BETTER = ("Euclid", "Manhattan")
CONTEXT_EPSILON = 1e-6


def unpack(data: bytes) -> tuple[float, ...]:
    unpacker = _UNPACKERS.get(len(data))
    if unpacker is None:
        unpacker = _UNPACKERS.setdefault(len(data), struct.Struct(f"<{len(data) // 4}f"))
    return unpacker.unpack(data)


def float32(value: float) -> float:
    if not math.isfinite(value):
        return value
    try:
        return float(_F32.unpack(_F32.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def dense_score(distance: str, query: list[float]) -> Callable[[bytes], float]:
    """The score of a stored dense vector against the query, as the distance defines it."""
    if distance == "Dot":
        return lambda data: sum(map(operator.mul, query, unpack(data)))
    if distance == "Euclid":
        return lambda data: math.dist(query, unpack(data))
    if distance == "Manhattan":
        return lambda data: sum(abs(a - b) for a, b in zip(query, unpack(data), strict=False))
    query_norm = math.sqrt(sum(a * a for a in query))

    def cosine(data: bytes) -> float:
        vector = unpack(data)
        norm = query_norm * math.sqrt(sum(b * b for b in vector))
        return sum(map(operator.mul, query, vector)) / norm if norm else 0.0
    return cosine


def sparse_score(query: dict[int, float]) -> Callable[[Any], float | None]:
    def dot(data: Any) -> float | None:
        indices, values = data
        count = len(indices) // 4
        found = False
        total = 0.0
        for index, value in zip(struct.unpack(f"<{count}I", indices), struct.unpack(f"<{count}f", values),
                                strict=True):
            weight = query.get(index)
            if weight is not None:
                total += weight * value
                found = True
        return total if found else None
    return dot


def similarity(distance: str, example: Any, zero_without_overlap: bool = False) -> Similarity:
    """Bigger is better, whatever the distance (for recommend, discover and context)."""
    if isinstance(example, dict):
        dot = sparse_score(example)
        if zero_without_overlap:
            return lambda data: dot(data) or 0.0
        return dot
    score = dense_score(distance, example)
    if distance in SMALLER_IS_BETTER:
        return lambda data: -score(data)
    return score


def sigmoid_scaled(value: float) -> float:
    """Qdrant's `scaled_fast_sigmoid`: (x / (1 + |x|) + 1) / 2, into (0, 1)."""
    return 0.5 * (value / (1.0 + abs(value)) + 1.0) if math.isfinite(value) else value


def scorer(query: list[Any], distance: str) -> Callable[[Any], float | None]:
    kind = query[0]
    if kind == "nearest":
        return dense_score(distance, query[1])
    if kind == "nearest_sparse":
        return sparse_score({int(index): value for index, value in query[1].items()})
    if kind == "recommend":
        strategy, positives, negatives = query[1], query[2], query[3]
        positive = [similarity(distance, example, True) for example in positives]
        negative = [similarity(distance, example, True) for example in negatives]
        if strategy == "sum_scores":
            return lambda data: sum(s(data) or 0.0 for s in positive) - sum(s(data) or 0.0 for s in negative)

        def best_score(data: Any) -> float:
            best_positive = max((s(data) or 0.0 for s in positive), default=-math.inf)
            best_negative = max((s(data) or 0.0 for s in negative), default=-math.inf)
            if best_positive > best_negative:
                return sigmoid_scaled(best_positive)
            return -sigmoid_scaled(best_negative)
        return best_score
    if kind == "discover":
        target = similarity(distance, query[1], True)
        pairs = [(similarity(distance, p, True), similarity(distance, n, True)) for p, n in query[2]]

        def discover(data: Any) -> float:
            rank = 0
            for positive, negative in pairs:
                difference = (positive(data) or 0.0) - (negative(data) or 0.0)
                rank += 1 if difference > 0 else -1 if difference < 0 else 0
            return rank + sigmoid_scaled(target(data) or 0.0)
        return discover
    if kind == "context":
        pairs = [(similarity(distance, p, True), similarity(distance, n, True)) for p, n in query[1]]

        def context(data: Any) -> float:
            total = 0.0
            for positive, negative in pairs:
                difference = min((positive(data) or 0.0) - (negative(data) or 0.0) - CONTEXT_EPSILON, 0.0)
                total += difference / (1.0 + abs(difference))
            return total
        return context
    raise ValueError(f"unknown query kind {kind!r}")


def ascending(query: list[Any] | None, distance: str) -> bool:
    """Whether smaller scores are better: only a nearest query on Euclid or Manhattan."""
    return query is not None and query[0] == "nearest" and distance in SMALLER_IS_BETTER


def threshold_passes(score: float, threshold: float | None, smaller_is_better: bool) -> bool:
    if threshold is None:
        return True
    limit = float32(threshold)
    return score <= limit if smaller_is_better else score >= limit


def shard_query(points: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The best `limit` points of one shard (a mapping id -> (vectors, payload, version)) for the query."""
    query, distance, using = request.get("query"), request.get("distance", "Dot"), request.get("using", "")
    matches = filter_compile(request.get("filter"))
    limit = int(request["limit"])
    if query is None:  # no query: points in id order, scored 0
        ids = sorted((point_id for point_id, record in points.items() if matches(point_id, record[1], record[0])),
                     key=id_order)[:limit]
        return [scored_out(point_id, points[point_id], 0.0, request) for point_id in ids]
    score_of = scorer(query, distance)
    smaller = ascending(query, distance)
    threshold = request.get("score_threshold")
    found: list[tuple[float, PointId, Any]] = []
    for point_id, record in points.items():
        vectors, payload = record[0], record[1]
        data = vectors if type(vectors) is bytes and using == "" else (
            vectors.get(using) if type(vectors) is dict else None)
        if data is None or not matches(point_id, payload, vectors):
            continue
        value = score_of(data)
        if value is None:
            continue
        value = float32(value)
        if threshold_passes(value, threshold, smaller):
            found.append((value, point_id, record))
    best = heapq.nsmallest(limit, found, key=lambda item: item[0]) if smaller else heapq.nlargest(
        limit, found, key=lambda item: item[0])
    return [scored_out(point_id, record, value, request) for value, point_id, record in best]


def scored_out(point_id: PointId, record: Any, score: float, request: dict[str, Any]) -> dict[str, Any]:
    vectors, payload, version = record
    return {"id": point_id, "version": version, "score": score,
            "payload": payload_select(payload, request.get("with_payload", False)),
            "vector": vectors_out(vectors, request.get("with_vector", False))}


def merged(shard_results: list[list[dict[str, Any]]], smaller_is_better: bool, offset: int,
           limit: int) -> list[dict[str, Any]]:
    """The shards' best points merged into one ranking (ties by id), then `offset` and `limit`."""
    points = [point for result in shard_results for point in result]
    points.sort(key=lambda p: (p["score"] if smaller_is_better else -p["score"], id_order(p["id"])))
    return points[offset:offset + limit]


def id_order(point_id: PointId) -> tuple[int, Any]:
    return (0, point_id) if isinstance(point_id, int) else (1, point_id)


def scores_printed(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scores as Qdrant prints its float32s."""
    for point in points:
        point["score"] = float32_shortest(point["score"])
    return points


def mmr_rerank(candidates: list[dict[str, Any]], vectors: dict[PointId, Any], query: Any, distance: str,
               diversity: float, limit: int) -> list[dict[str, Any]]:
    """Maximal marginal relevance: start from the most relevant candidate, then repeatedly take the one
    with the best `(1 - diversity) * relevance - diversity * (its highest similarity to those taken)`.
    Points keep their scores; only the order (and which points) change."""
    pending = [p for p in candidates if vectors.get(p["id"]) is not None]
    if not pending:
        return []
    to_query = similarity(distance, query, True)
    relevance = {p["id"]: to_query(vectors[p["id"]]) or 0.0 for p in pending}
    among: dict[PointId, Similarity] = {}
    taken = [max(pending, key=lambda p: relevance[p["id"]])]
    pending.remove(taken[0])
    nearest_taken = {p["id"]: -math.inf for p in pending}
    while pending and len(taken) < limit:
        last = taken[-1]["id"]
        if last not in among:
            among[last] = similarity(distance, vector_plain(vectors[last]), True)
        for point in pending:
            nearest_taken[point["id"]] = max(nearest_taken[point["id"]], among[last](vectors[point["id"]]) or 0.0)
        best = max(pending, key=lambda p: (1 - diversity) * relevance[p["id"]] - diversity * nearest_taken[p["id"]])
        taken.append(best)
        pending.remove(best)
    return taken


def vector_plain(data: Any) -> Any:
    """A stored vector as a query example: dense floats, or a sparse `{index: value}`."""
    if type(data) is bytes:
        return list(unpack(data))
    indices, values = data
    count = len(indices) // 4
    return dict(zip(struct.unpack(f"<{count}I", indices), struct.unpack(f"<{count}f", values), strict=True))


# --- fusion of prefetch results ---------------------------------------------------------------------------

RRF_K = 2


def fusion_rrf(results: list[list[dict[str, Any]]], weights: list[float] | None = None,
               k: int = RRF_K) -> list[dict[str, Any]]:
    """Reciprocal rank fusion: each list adds weight / (rank + k) (ranks from 0, weight 1 by default)."""
    scores: dict[Any, float] = {}
    points: dict[Any, dict[str, Any]] = {}
    for source, result in enumerate(results):
        weight = weights[source] if weights else 1.0
        for rank, point in enumerate(result):
            key = point["id"]
            points.setdefault(key, point)
            scores[key] = scores.get(key, 0.0) + (1.0 / ((rank + 1.0) / weight + k - 1.0) if weight > 0 else 0.0)
    return fused(points, scores)


def fusion_dbsf(results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Distribution-based score fusion: each list's scores normalized by mean +- 3 standard deviations,
    then summed per point."""
    scores: dict[Any, float] = {}
    points: dict[Any, dict[str, Any]] = {}
    for result in results:
        if not result:
            continue
        values = [point["score"] for point in result]
        mean = sum(values) / len(values)
        deviation = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        low, high = mean - 3 * deviation, mean + 3 * deviation
        for point in result:
            key = point["id"]
            points.setdefault(key, point)
            normalized = (point["score"] - low) / (high - low) if high > low else 0.5
            scores[key] = scores.get(key, 0.0) + normalized
    return fused(points, scores)


def fused(points: dict[Any, dict[str, Any]], scores: dict[Any, float]) -> list[dict[str, Any]]:
    ranked = sorted(points, key=lambda key: (-scores[key], id_order(key)))
    return [{**points[key], "score": float32(scores[key])} for key in ranked]
