"""Per-shard reads: retrieve, count, scroll, the ids a filter selects, ordering by a payload key, a random
sample, and scored queries (node/storage/search.py).

A read is plain data (`{"kind": ..., ...}`), so the node runs it on a local replica or sends it to the
peer holding an Active replica; its result is plain, msgpack-able data that the node merges across shards.
Filters are compiled once per read (node/storage/filters.py).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from node.errors import BadInput
from node.protocol import PointId
from node.storage.filters import datetime_parse, filter_compile
from node.storage.payload import payload_select, values_flat
from node.storage.search import id_order, shard_query
from node.storage.shard import Shard
from node.storage.vectors import vectors_out

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def record_out(point_id: PointId, record: tuple[Any, dict[str, Any], int], with_payload: Any,
               with_vector: Any) -> dict[str, Any]:
    vectors, payload, _version = record
    return {"id": point_id, "payload": payload_select(payload, with_payload),
            "vector": vectors_out(vectors, with_vector)}


def id_sort_key(point_id: PointId) -> tuple[int, Any]:
    return id_order(point_id)


def shard_read(shard: Shard, request: dict[str, Any]) -> Any:
    """One read on one shard. `request["kind"]` is retrieve | vectors | count | ids | scroll | order_by | sample
    | query."""
    kind = request["kind"]
    if kind == "retrieve":
        found = []
        for point_id in request["ids"]:
            record = shard.points.get(point_id)
            if record is not None:
                found.append(record_out(point_id, record, request.get("with_payload", True),
                                        request.get("with_vector", False)))
        return found
    if kind == "query":
        return shard_query(shard.points, request)
    if kind == "vectors":  # one named vector of each point, as stored
        using = request["using"]
        pairs: list[list[Any]] = []
        for point_id in request["ids"]:
            record = shard.points.get(point_id)
            if record is not None:
                vectors = record[0]
                pairs.append([point_id, vectors if type(vectors) is bytes and using == "" else (
                    vectors.get(using) if type(vectors) is dict else None)])
        return pairs
    matches = filter_compile(request.get("filter"))
    selected = ((point_id, record) for point_id, record in shard.points.items()
                if matches(point_id, record[1], record[0]))
    if kind == "count":
        if not request.get("filter"):
            return len(shard.points)
        return sum(1 for _ in selected)
    if kind == "ids":
        return [point_id for point_id, _ in selected]
    if kind == "scroll":
        offset = request.get("offset")
        start = id_sort_key(offset) if offset is not None else None
        candidates = sorted((point_id for point_id, _ in selected
                             if start is None or id_sort_key(point_id) >= start), key=id_sort_key)
        return [record_out(point_id, shard.points[point_id], request.get("with_payload", True),
                           request.get("with_vector", False)) for point_id in candidates[: request["limit"] + 1]]
    if kind == "order_by":
        return shard_order_by(selected, request)
    if kind == "sample":
        seed = bytes(request["seed"])
        ranked = sorted(selected, key=lambda item: sample_rank(seed, item[0]))[: request["limit"]]
        return [{**record_out(point_id, record, request.get("with_payload", False),
                              request.get("with_vector", False)), "version": record[2], "score": 0.0,
                 "rank": sample_rank(seed, point_id)} for point_id, record in ranked]
    raise BadInput(f"unknown read {kind}")


def sample_rank(seed: bytes, point_id: PointId) -> str:
    """A point's place in a random sample: a hash of the request's seed and the id (the same on every shard)."""
    return hashlib.blake2b(f"{point_id}".encode(), key=seed[:64], digest_size=8).hexdigest()


def order_values(payload: dict[str, Any], key: str) -> list[int | float]:
    """The values a point is ordered by: each number at `key`, and each RFC 3339 datetime there as
    microseconds since the epoch (what Qdrant's `order_value` gives for a datetime)."""
    found: list[int | float] = []
    for value in values_flat(payload, key):
        if type(value) in (int, float):
            found.append(value)
        elif type(value) is str:
            moment = datetime_micros(value)
            if moment is not None:
                found.append(moment)
    return found


def datetime_micros(value: Any) -> int | None:
    try:
        moment = datetime_parse(value)
    except ValueError:
        return None
    return (moment - EPOCH) // datetime.timedelta(microseconds=1)


def start_from_value(value: Any) -> int | float | None:
    if value is None or type(value) in (int, float):
        return value  # type: ignore[no-any-return]
    micros = datetime_micros(value)
    if micros is None:
        raise BadInput(f"order_by.start_from: {value!r} is neither a number nor an RFC 3339 datetime")
    return micros


def shard_order_by(selected: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Points ordered by a payload value (`order_by`), from `start_from`: a point appears once per value it
    has at the key (as Qdrant's index gives it); points without one are left out."""
    key, descending = request["key"], request["descending"]
    start = start_from_value(request.get("start_from"))
    rows = []
    for point_id, record in selected:
        for value in order_values(record[1], key):
            if start is None or (value <= start if descending else value >= start):
                rows.append((value, point_id, record))
    rows.sort(key=lambda row: ((-row[0] if descending else row[0]), id_sort_key(row[1])))
    return [{**record_out(point_id, record, request.get("with_payload", True), request.get("with_vector", False)),
             "version": record[2], "score": 0.0, "order_value": value}
            for value, point_id, record in rows[: request["limit"]]]
