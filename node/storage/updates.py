"""Update requests in Qdrant's shapes, validated and turned into shard operations (node/storage/operations.py).

Each parser checks the whole request against the collection (ids, vector names and dimensions, sparse
vectors, payload keys, filters) before it returns, so a request with one bad point writes nothing. A
request that selects points by `filter` is parsed into an `Update` whose ids the caller resolves (a read
of the matching ids) before the operation is made; the operation itself always names its points, so every
replica applies exactly the same change, whenever it gets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.errors import BadInput, FormatError, ValidationError
from node.protocol import PointId, point_id_normalize
from node.storage.collections import Collection
from node.storage.filters import filter_compile
from node.storage.payload import path_parse
from node.storage.vectors import sparse_shapes_check, vectors_merge, vectors_parse

UPDATE_KINDS = ("upsert", "delete", "set_payload", "overwrite_payload", "delete_payload", "clear_payload",
                "update_vectors", "delete_vectors")


def point_id_parse(value: Any) -> PointId:
    try:
        return point_id_normalize(value)
    except ValueError as error:
        raise FormatError(f"Format error in JSON body: {error}") from None


@dataclass
class Update:
    """One client update: a kind, per-point items (upsert, update_vectors) or a selection (ids given, or a
    filter to resolve), and the data every selected point gets."""
    kind: str
    items: list[list[Any]] = field(default_factory=list)  # [[id, ...], ...] for upsert / update_vectors
    ids: list[PointId] | None = None
    filter: dict[str, Any] | None = None  # the selection; for upsert and update_vectors, `update_filter`
    data: dict[str, Any] = field(default_factory=dict)
    must_exist: bool = False  # points named by id must exist (Qdrant answers 404 otherwise)

    def operations(self, collection: Collection, ids: list[PointId] | None = None) -> dict[int, list[Any]]:
        """One operation per shard (`[kind, data]`; the node inserts the version). `ids`: the selection,
        for an update selected by filter."""
        by_shard: dict[int, list[Any]] = {}
        if self.kind in ("upsert", "update_vectors"):
            for item in items_last_wins(self.kind, self.items):
                by_shard.setdefault(collection.shard_of(item[0]), []).append(item)
            return {shard: [self.kind, items] for shard, items in by_shard.items()}
        selection = self.ids if ids is None else ids
        assert selection is not None, "an update selected by filter needs its ids resolved"
        for point_id in dict.fromkeys(selection):
            by_shard.setdefault(collection.shard_of(point_id), []).append(point_id)
        if self.kind == "delete":
            return {shard: ["delete", point_ids] for shard, point_ids in by_shard.items()}
        return {shard: [self.kind, {**self.data, "ids": point_ids}] for shard, point_ids in by_shard.items()}


def items_last_wins(kind: str, items: list[list[Any]]) -> list[list[Any]]:
    """One item per point (one operation has one version, so a point can change once in it): a later upsert
    of the same id wins, later vectors of the same id replace earlier ones of the same names."""
    by_id: dict[PointId, list[Any]] = {}
    for item in items:
        earlier = by_id.get(item[0])
        if earlier is not None and kind == "update_vectors":
            item = [item[0], vectors_merge(earlier[1], item[1])]
        by_id[item[0]] = item
    return list(by_id.values())


def body_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected an object")
    return value


def selection_parse(body: dict[str, Any], kind: str, where: str) -> Update:
    """`points: [ids]` or `filter: {...}` (Qdrant's PointsSelector, also as `{"points": ...}` nested)."""
    if "points" in body and body["points"] is not None:
        points = body["points"]
        if not isinstance(points, list):
            raise FormatError(f"Format error in JSON body: {where}points: expected a list of point ids")
        return Update(kind, ids=[point_id_parse(value) for value in points], must_exist=kind != "delete")
    if "filter" in body and body["filter"] is not None:
        filter_compile(body["filter"], f"{where}filter")
        return Update(kind, filter=body["filter"])
    raise FormatError(f"Format error in JSON body: {where}expected `points` or `filter`")


def upsert_parse(body: dict[str, Any], collection: Collection) -> Update:
    """Qdrant's PointInsertOperations: `{"points": [...]}` or `{"batch": {"ids", "vectors", "payloads"}}`."""
    spec = collection.vector_spec
    if "points" in body:
        records = body["points"]
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise FormatError("Format error in JSON body: points: expected a list of point objects")
        triples = [(record.get("id"), record.get("vector", record.get("vectors")), record.get("payload"))
                   for record in records]
    elif isinstance(body.get("batch"), dict):
        triples = batch_triples(body["batch"])
    else:
        raise FormatError("Format error in JSON body: expected `points` or `batch`")
    for number, (_, raw_vectors, _) in enumerate(triples):
        sparse_shapes_check(raw_vectors, f"points[{number}].vector")
    items = []
    for number, (raw_id, raw_vectors, payload) in enumerate(triples):
        point_id = point_id_parse(raw_id)
        if payload is not None and not isinstance(payload, dict):
            raise FormatError(f"Format error in JSON body: points[{number}].payload: expected an object")
        if raw_vectors is None:
            raise FormatError(f"Format error in JSON body: points[{number}]: missing field `vector`")
        items.append([point_id, vectors_parse(raw_vectors, spec, f"points[{number}].vector"), payload or {}])
    update = Update("upsert", items=items)
    if body.get("update_filter") is not None:
        filter_compile(body["update_filter"], "update_filter")
        update.filter = body["update_filter"]  # only existing points that match it are overwritten
    return update


def batch_triples(batch: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    """Columns of a batch: `vectors` a list of vectors, or a map of names to lists (one per point)."""
    ids = batch.get("ids")
    if not isinstance(ids, list):
        raise FormatError("Format error in JSON body: batch.ids: expected a list of point ids")
    vectors = batch.get("vectors")
    if isinstance(vectors, dict):
        for name, column in vectors.items():
            if not isinstance(column, list) or len(column) != len(ids):
                raise BadInput(f"Batch vectors `{name}` must be a list with one vector per id")
        rows: list[Any] = [{name: column[i] for name, column in vectors.items()} for i in range(len(ids))]
    elif isinstance(vectors, list):
        rows = vectors
    else:
        raise FormatError("Format error in JSON body: batch.vectors: expected a list or a map of named lists")
    payloads = batch.get("payloads")
    if payloads is None:
        payloads = [None] * len(ids)
    if not isinstance(payloads, list) or not len(ids) == len(rows) == len(payloads):
        raise BadInput("Batch ids, vectors and payloads must have the same length")
    return list(zip(ids, rows, payloads, strict=True))


def delete_parse(body: dict[str, Any], where: str = "") -> Update:
    return selection_parse(body, "delete", where)


def payload_parse(body: dict[str, Any], kind: str, where: str = "") -> Update:
    """set_payload / overwrite_payload (`payload`, optional `key`), delete_payload (`keys`), clear_payload."""
    if kind in ("set_payload", "overwrite_payload"):
        update = selection_parse(body, kind, where)
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise FormatError(f"Format error in JSON body: {where}payload: expected an object")
        key = body.get("key")
        if key is not None:
            if not isinstance(key, str):
                raise FormatError(f"Format error in JSON body: {where}key: expected a string")
            path_parse(key)
        update.data = {"payload": payload, "key": key}
        return update
    if kind == "delete_payload":
        update = selection_parse(body, kind, where)
        keys = body.get("keys")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise FormatError(f"Format error in JSON body: {where}keys: expected a list of strings")
        for key in keys:
            path_parse(key)
        update.data = {"keys": keys}
        return update
    if kind == "clear_payload":
        return selection_parse(body, kind, where)
    raise ValueError(kind)


def vectors_update_parse(body: dict[str, Any], collection: Collection, where: str = "") -> Update:
    """`PUT /points/vectors`: `{"points": [{"id", "vector": {...}}]}` (only the vectors given change)."""
    spec = collection.vector_spec
    points = body.get("points")
    if not isinstance(points, list) or not all(isinstance(point, dict) for point in points):
        raise FormatError(f"Format error in JSON body: {where}points: expected a list of point objects")
    for number, point in enumerate(points):
        sparse_shapes_check(point.get("vector", point.get("vectors")), f"{where}points[{number}].vector")
    items: list[list[Any]] = []
    ids: list[PointId] = []
    for number, point in enumerate(points):
        point_id = point_id_parse(point.get("id"))
        ids.append(point_id)
        raw = point.get("vector", point.get("vectors"))
        if raw is None:
            raise FormatError(f"Format error in JSON body: {where}points[{number}]: missing field `vector`")
        if raw == {}:
            raise ValidationError(f"Validation error in JSON body: [{where}points[{number}].vector: must specify "
                                  f"vectors to update for point]")
        items.append([point_id, vectors_parse(raw, spec, f"{where}points[{number}].vector")])
    update = Update("update_vectors", items=items, ids=ids, must_exist=True)
    if body.get("update_filter") is not None:
        filter_compile(body["update_filter"], f"{where}update_filter")
        update.filter = body["update_filter"]  # only points that match it are updated
    return update


def vectors_delete_parse(body: dict[str, Any], collection: Collection, where: str = "") -> Update:
    """`POST /points/vectors/delete`: `{"points" | "filter", "vector": [names]}`."""
    update = selection_parse(body, "delete_vectors", where)
    names = body.get("vector", body.get("vectors"))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise FormatError(f"Format error in JSON body: {where}vector: expected a list of vector names")
    for name in names:
        collection.vector_spec.name_check(name)
    update.data = {"names": names}
    return update


def batch_parse(body: dict[str, Any], collection: Collection) -> list[Update]:
    """`POST /points/batch`: `{"operations": [{"upsert": {...}}, {"delete": {...}}, ...]}`, every operation
    validated before any is applied."""
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise FormatError("Format error in JSON body: missing field `operations`")
    updates = []
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or len(operation) != 1:
            raise FormatError(f"Format error in JSON body: operations[{number}]: expected one of "
                              f"{', '.join(f'`{kind}`' for kind in UPDATE_KINDS)}")
        (kind, inner), = operation.items()
        where = f"operations[{number}].{kind}."
        if kind == "upsert":
            updates.append(upsert_parse(body_object(inner, where), collection))
        elif kind == "delete":
            updates.append(delete_parse(body_object(inner, where), where))
        elif kind in ("set_payload", "overwrite_payload", "delete_payload", "clear_payload"):
            inner = body_object(inner, where)
            if kind == "clear_payload" and "points" in inner and isinstance(inner["points"], dict):
                inner = inner["points"]  # Qdrant's batch clear_payload wraps its selector
            updates.append(payload_parse(inner, kind, where))
        elif kind == "update_vectors":
            updates.append(vectors_update_parse(body_object(inner, where), collection, where))
        elif kind == "delete_vectors":
            updates.append(vectors_delete_parse(body_object(inner, where), collection, where))
        else:
            raise FormatError(f"Format error in JSON body: operations[{number}]: unknown variant `{kind}`, "
                              f"expected one of {', '.join(f'`{k}`' for k in UPDATE_KINDS)}")
    return updates
