"""Points: parsing Qdrant's request shapes into shard operations, and the per-shard read functions.

Writes become one operation per shard (`["upsert", [[id, vector_bytes, payload], ...]]`,
`["delete", [ids]]`, `["set_payload", [[id, payload], ...]]`). Reads run per shard (locally or on the peer
holding an Active replica) and are merged by the node: retrieve, count, scroll and nearest-neighbour query
by a plain scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from node.errors import BadInput, FormatError
from node.protocol import PointId, point_id_normalize, vector_pack, vector_unpack
from node.storage.collections import Collection
from node.storage.shard import Operation, Shard


def point_id_parse(value: Any) -> PointId:
    try:
        return point_id_normalize(value)
    except ValueError as error:
        raise FormatError(f"Format error in JSON body: {error}") from None


def vector_parse(value: Any, size: int) -> bytes:
    if isinstance(value, dict):
        if len(value) == 1 and "" in value:
            value = value[""]
        else:
            raise BadInput("Named vectors are not supported by shardsim: use a single unnamed vector")
    if not isinstance(value, list) or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                              for x in value):
        raise FormatError("Format error in JSON body: vector must be a list of numbers")
    if len(value) != size:
        raise BadInput(f"Wrong input: Vector dimension error: expected dim: {size}, got {len(value)}")
    return vector_pack(value)


def upsert_parse(body: dict[str, Any], collection: Collection) -> dict[int, Operation]:
    """Qdrant's PointInsertOperations: `{"points": [...]}` or `{"batch": {"ids", "vectors", "payloads"}}`."""
    if "points" in body:
        records = body["points"]
        if not isinstance(records, list):
            raise FormatError("Format error in JSON body: points must be a list")
        triples = [(record.get("id"), record.get("vector"), record.get("payload")) for record in records
                   if isinstance(record, dict)]
        if len(triples) != len(records):
            raise FormatError("Format error in JSON body: every point must be an object")
    elif "batch" in body and isinstance(body["batch"], dict):
        batch = body["batch"]
        ids, vectors = batch.get("ids") or [], batch.get("vectors") or []
        payloads = batch.get("payloads") or [None] * len(ids)
        if not (len(ids) == len(vectors) == len(payloads)):
            raise BadInput("Batch ids, vectors and payloads must have the same length")
        triples = list(zip(ids, vectors, payloads, strict=True))
    else:
        raise FormatError("Format error in JSON body: expected `points` or `batch`")
    by_shard: dict[int, list[list[Any]]] = {}
    for raw_id, raw_vector, payload in triples:
        point_id = point_id_parse(raw_id)
        if payload is not None and not isinstance(payload, dict):
            raise FormatError("Format error in JSON body: payload must be an object")
        vector = vector_parse(raw_vector, collection.vector_size)
        by_shard.setdefault(collection.shard_of(point_id), []).append([point_id, vector, payload or {}])
    return {shard: ["upsert", points] for shard, points in by_shard.items()}


def delete_parse(body: dict[str, Any], collection: Collection, matching: Iterable[PointId] = ()
                 ) -> dict[int, Operation]:
    """`{"points": [ids]}`; a `{"filter": ...}` selector is resolved by the caller into `matching`."""
    if "points" in body:
        if not isinstance(body["points"], list):
            raise FormatError("Format error in JSON body: points must be a list of ids")
        ids = [point_id_parse(value) for value in body["points"]]
    elif "filter" in body:
        ids = list(matching)
    else:
        raise FormatError("Format error in JSON body: expected `points` or `filter`")
    by_shard: dict[int, list[PointId]] = {}
    for point_id in ids:
        by_shard.setdefault(collection.shard_of(point_id), []).append(point_id)
    return {shard: ["delete", point_ids] for shard, point_ids in by_shard.items()}


# --- filters (a useful subset of Qdrant's) ------------------------------------------------------------

def condition_match(condition: dict[str, Any], point_id: PointId, payload: dict[str, Any]) -> bool:
    if "has_id" in condition:
        return point_id in {point_id_parse(value) for value in condition["has_id"]}
    if any(key in condition for key in ("must", "should", "must_not")):
        return filter_match(condition, point_id, payload)
    key = condition.get("key")
    if not isinstance(key, str):
        raise BadInput(f"Unsupported filter condition {condition}")
    value = payload.get(key)
    if "match" in condition:
        match = condition["match"]
        if "value" in match:
            return bool(value == match["value"] or (isinstance(value, list) and match["value"] in value))
        if "any" in match:
            return value in match["any"]
        if "except" in match:
            return value not in match["except"]
    if "range" in condition:
        if not isinstance(value, int | float):
            return False
        bounds = condition["range"]
        checks = {"gt": value > bounds.get("gt", -math.inf), "gte": value >= bounds.get("gte", -math.inf),
                  "lt": value < bounds.get("lt", math.inf), "lte": value <= bounds.get("lte", math.inf)}
        return all(checks[name] for name in checks if bounds.get(name) is not None)
    if "is_empty" in condition:
        return value in (None, [], "")
    raise BadInput(f"Unsupported filter condition {condition}")


def filter_match(flt: dict[str, Any] | None, point_id: PointId, payload: dict[str, Any]) -> bool:
    if not flt:
        return True
    def as_list(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value] if value else []
    must = as_list(flt.get("must"))
    should = as_list(flt.get("should"))
    must_not = as_list(flt.get("must_not"))
    if not all(condition_match(c, point_id, payload) for c in must):
        return False
    if should and not any(condition_match(c, point_id, payload) for c in should):
        return False
    return not any(condition_match(c, point_id, payload) for c in must_not)


# --- per-shard reads (results are plain, msgpack-able data) ------------------------------------------

def record_out(point_id: PointId, record: tuple[bytes, dict[str, Any], int], with_payload: Any,
               with_vector: Any) -> dict[str, Any]:
    vector, payload, _version = record
    out: dict[str, Any] = {"id": point_id}
    out["payload"] = payload_select(payload, with_payload)
    out["vector"] = vector_unpack(vector) if with_vector else None
    return out


def payload_select(payload: dict[str, Any], with_payload: Any) -> dict[str, Any] | None:
    if with_payload is True or with_payload is None:
        return payload
    if with_payload is False:
        return None
    if isinstance(with_payload, list):
        return {key: payload[key] for key in with_payload if key in payload}
    if isinstance(with_payload, dict):
        if "include" in with_payload:
            return {key: payload[key] for key in with_payload["include"] if key in payload}
        if "exclude" in with_payload:
            return {key: value for key, value in payload.items() if key not in with_payload["exclude"]}
    return payload


def id_sort_key(point_id: PointId) -> tuple[int, Any]:
    return (0, point_id) if isinstance(point_id, int) else (1, point_id)


def shard_read(shard: Shard, request: dict[str, Any]) -> Any:
    """One read on one shard. `request["kind"]` is retrieve | count | scroll | query | ids."""
    kind = request["kind"]
    flt = request.get("filter")
    if kind == "retrieve":
        found = []
        for raw in request["ids"]:
            record = shard.points.get(raw)
            if record is not None:
                found.append(record_out(raw, record, request.get("with_payload", True),
                                        request.get("with_vector", False)))
        return found
    if kind == "count":
        if not flt:
            return len(shard.points)
        return sum(1 for pid, rec in shard.points.items() if filter_match(flt, pid, rec[1]))
    if kind == "ids":
        return [pid for pid, rec in shard.points.items() if filter_match(flt, pid, rec[1])]
    if kind == "scroll":
        offset = request.get("offset")
        candidates = sorted((pid for pid, rec in shard.points.items() if filter_match(flt, pid, rec[1])
                             and (offset is None or id_sort_key(pid) >= id_sort_key(offset))),
                            key=id_sort_key)[: request["limit"] + 1]
        return [record_out(pid, shard.points[pid], request.get("with_payload", True),
                           request.get("with_vector", False)) for pid in candidates]
    if kind == "query":
        return shard_query(shard, request)
    raise BadInput(f"unknown read {kind}")


def score(distance: str, query: list[float], vector: list[float]) -> float:
    if distance == "Dot":
        return sum(a * b for a, b in zip(query, vector, strict=False))
    if distance == "Euclid":
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(query, vector, strict=False)))
    if distance == "Manhattan":
        return sum(abs(a - b) for a, b in zip(query, vector, strict=False))
    norm = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in vector))
    return sum(a * b for a, b in zip(query, vector, strict=False)) / norm if norm else 0.0


def shard_query(shard: Shard, request: dict[str, Any]) -> list[dict[str, Any]]:
    query, distance, flt = request.get("vector"), request["distance"], request.get("filter")
    limit = request["limit"] + request.get("offset", 0)
    scored = []
    for pid, record in shard.points.items():
        if not filter_match(flt, pid, record[1]):
            continue
        value = score(distance, query, vector_unpack(record[0])) if query is not None else 0.0
        scored.append((value, pid, record))
    reverse = distance not in ("Euclid", "Manhattan")
    if query is None:
        scored.sort(key=lambda item: id_sort_key(item[1]))
    else:
        scored.sort(key=lambda item: item[0], reverse=reverse)
    out = []
    for value, pid, record in scored[:limit]:
        point = record_out(pid, record, request.get("with_payload", False), request.get("with_vector", False))
        point["score"] = value
        point["version"] = record[2]
        out.append(point)
    return out
