"""Shard operations: their shapes, the one check every operation passes before it may enter a write-ahead log
(and again when a log is replayed), and how each one changes a point.

An operation is `[kind, version, data]` (the version, an unsigned 64-bit integer, is given by the node that
took the client's request):
    upsert             [[id, vectors, payload], ...]      vectors in canonical form (node.protocol.Vectors)
    delete             [id, ...]
    set_payload        {"ids", "payload", "key"}          merge into the payload, or into the object at `key`
    overwrite_payload  {"ids", "payload", "key"}          replace the payload (or the value at `key`)
    delete_payload     {"ids", "keys"}
    clear_payload      {"ids"}
    update_vectors     [[id, vectors], ...]               replace the named vectors given, keep the others
    delete_vectors     {"ids", "names"}
(`set_payload` as `[[id, payload], ...]` is the form of format-2 logs; it is still read and applied.)
Updates other than upsert and delete change only points that exist.

Requests are fully validated against the collection before they become operations (node/storage/updates.py);
`operation_check` is the shard's own guard, one entry of `OPERATION_CHECKS` per kind. It refuses
(`MalformedOperation`, a 400 in Qdrant's envelope) anything the apply step could not apply or would store
wrongly: an unknown kind, a version that is not an unsigned 64-bit integer, data of the wrong shape, a point
id that is not canonical (an unsigned 64-bit integer or a lowercase hyphenated UUID), a payload that is not
an object, a key path that does not parse, and, against the collection's vectors (`OperationSchema`): a
dense vector that is not float32 bytes of its vector's size, a sparse vector that is not u32 indices
(unique, ascending) and as many f32 values, a vector name the collection does not have. `Shard.apply` runs
it before the WAL append, the internal apply route and `Node.update` on every operation of a request before
any is applied, and `log_record_check` on every record at replay, where a record that fails it is damage
(node/storage/shard.py). A new kind plugs in with one entry in `OPERATION_CHECKS` and one branch in
`point_changes` (or in `Shard._apply_memory`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from node.errors import BadInput
from node.storage.payload import path_parse, payload_delete_keys, payload_set_at
from node.storage.vectors import VectorSpec, vectors_merge, vectors_without

Operation = list[Any]
Change = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]]  # (vectors, payload) -> new ones
U64_LIMIT = 1 << 64
UUID_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FLOAT32_BYTES = 4


# --- the check ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OperationSchema:
    """What a collection's config says about its operations: its dense vectors (name -> size, "" the unnamed
    one) and sparse vectors. None: a shard opened without its collection's config, whose vectors are only
    checked to be well formed (any name)."""

    vectors: VectorSpec | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OperationSchema:
        try:
            return cls(VectorSpec.from_config(config))
        except (TypeError, ValueError, KeyError, AttributeError):  # a config no request could have made
            return cls()


class MalformedOperation(BadInput):
    """An operation a shard refuses to log or apply."""


Check = Callable[[Any, OperationSchema], None]


def operation_check(operation: Any, schema: OperationSchema) -> None:
    """Refuse (MalformedOperation, a 400) an operation that is not well formed for this collection; nothing
    is written for it."""
    if type(operation) is not list or len(operation) != 3:
        raise MalformedOperation(f"Malformed shard operation: expected [kind, version, data], got "
                                 f"{abbreviated(operation)}")
    kind, version, data = operation
    check = OPERATION_CHECKS.get(kind) if type(kind) is str else None
    if check is None:
        raise MalformedOperation(f"Malformed shard operation: unknown kind {abbreviated(kind)}, expected one of "
                                 f"{', '.join(OPERATION_CHECKS)}")
    if type(version) is not int or not 0 <= version < U64_LIMIT:
        raise MalformedOperation(f"Malformed shard operation `{kind}`: version {abbreviated(version)} is not "
                                 f"an unsigned 64-bit integer")
    check(data, schema)


def log_record_check(record: Any, schema: OperationSchema) -> None:
    """A write-ahead log record `[seq, kind, version, data]`, as `Shard.apply` writes it."""
    if type(record) is not list or len(record) != 4:
        raise MalformedOperation(f"not a log record [seq, kind, version, data]: {abbreviated(record)}")
    if type(record[0]) is not int or record[0] < 1:
        raise MalformedOperation(f"log record sequence number {abbreviated(record[0])} is not a positive integer")
    operation_check(record[1:], schema)


def abbreviated(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def malformed(kind: str, what: str) -> MalformedOperation:
    return MalformedOperation(f"Malformed shard operation `{kind}`: {what}")


def point_id_valid(value: Any) -> bool:
    """An id as the shard stores it: an unsigned 64-bit integer or a UUID in canonical text."""
    if type(value) is int:
        return 0 <= value < U64_LIMIT
    return type(value) is str and UUID_CANONICAL.fullmatch(value) is not None


def ids_check(kind: str, ids: Any) -> None:
    if type(ids) is not list:
        raise malformed(kind, f"the point ids must be a list, got {type(ids).__name__}")
    for point_id in ids:
        if not point_id_valid(point_id):
            raise malformed(kind, f"point id {abbreviated(point_id)} is not an unsigned 64-bit integer or a UUID")


def items_of(kind: str, data: Any, width: int) -> list[Any]:
    """The data as a list of `width`-long items, each starting with a valid point id."""
    if type(data) is not list:
        raise malformed(kind, f"data must be a list, got {type(data).__name__}")
    for item in data:
        if type(item) not in (list, tuple) or len(item) != width:
            raise malformed(kind, f"every item must be a list of {width}, got {abbreviated(item)}")
        if not point_id_valid(item[0]):
            raise malformed(kind, f"point id {abbreviated(item[0])} is not an unsigned 64-bit integer or a UUID")
    return data


def selection_of(kind: str, data: Any) -> dict[str, Any]:
    """The data of an update of selected points: an object with valid `ids`."""
    if type(data) is not dict:
        raise malformed(kind, f"data must be an object with `ids`, got {type(data).__name__}")
    ids_check(kind, data.get("ids"))
    return data


def vector_label(name: str) -> str:
    return f"vector `{name}`" if name else "the unnamed vector"


def dense_check(kind: str, point_id: Any, name: str, vector: bytes, schema: OperationSchema) -> None:
    spec = schema.vectors
    if spec is None:
        if not vector or len(vector) % FLOAT32_BYTES:
            raise malformed(kind, f"{vector_label(name)} of point {point_id} has {len(vector)} bytes, expected a "
                                  f"positive multiple of {FLOAT32_BYTES}")
        return
    params = spec.dense.get(name)
    if params is None:
        known = "is sparse" if name in spec.sparse else "is not in the collection"
        raise malformed(kind, f"{vector_label(name)} of point {point_id} {known}, got dense float32 bytes")
    if len(vector) != params.size * FLOAT32_BYTES:
        raise malformed(kind, f"{vector_label(name)} of point {point_id} has {len(vector)} bytes, expected "
                              f"{params.size * FLOAT32_BYTES} ({params.size} float32 values)")


def sparse_check(kind: str, point_id: Any, name: str, vector: Any, schema: OperationSchema) -> None:
    """`[indices as u32 bytes, values as f32 bytes]`: as many of each, indices ascending (so unique)."""
    spec = schema.vectors
    if spec is not None and name not in spec.sparse:
        known = "is dense" if name in spec.dense else "is not in the collection"
        raise malformed(kind, f"{vector_label(name)} of point {point_id} {known}, got a sparse vector")
    if not (len(vector) == 2 and type(vector[0]) is bytes and type(vector[1]) is bytes
            and len(vector[0]) == len(vector[1]) and len(vector[0]) % FLOAT32_BYTES == 0):
        raise malformed(kind, f"sparse {vector_label(name)} of point {point_id} must be [u32 indices, f32 values] "
                              f"bytes of equal length")
    indices = struct.unpack(f"<{len(vector[0]) // FLOAT32_BYTES}I", vector[0])
    if any(earlier >= later for earlier, later in zip(indices, indices[1:], strict=False)):
        raise malformed(kind, f"sparse {vector_label(name)} of point {point_id} has indices that repeat or are "
                              f"not in ascending order")


def vectors_check(kind: str, point_id: Any, vectors: Any, schema: OperationSchema) -> None:
    """A point's vectors in canonical form: the unnamed vector's bytes, or a map of names to dense bytes and
    sparse `[indices, values]`."""
    if type(vectors) is bytes:
        dense_check(kind, point_id, "", vectors, schema)
        return
    if type(vectors) is not dict:
        raise malformed(kind, f"the vectors of point {point_id} must be float32 bytes or a map of named vectors, "
                              f"got {type(vectors).__name__}")
    for name, vector in vectors.items():
        if type(name) is not str:
            raise malformed(kind, f"the vectors of point {point_id} have a name that is not text: "
                                  f"{abbreviated(name)}")
        if type(vector) is bytes:
            dense_check(kind, point_id, name, vector, schema)
        elif type(vector) in (list, tuple):
            sparse_check(kind, point_id, name, vector, schema)
        else:
            raise malformed(kind, f"{vector_label(name)} of point {point_id} must be float32 bytes or a sparse "
                                  f"[indices, values], got {type(vector).__name__}")


def payload_check(kind: str, where: str, payload: Any) -> None:
    if type(payload) is not dict or not all(type(key) is str for key in payload):
        raise malformed(kind, f"the payload {where} must be an object with text keys")


def key_path_check(kind: str, key: Any) -> None:
    if type(key) is not str:
        raise malformed(kind, f"key {abbreviated(key)} must be text")
    try:
        path_parse(key)
    except BadInput:
        raise malformed(kind, f"key {abbreviated(key)} is not a valid key path") from None


def upsert_check(data: Any, schema: OperationSchema) -> None:
    """`[[id, vectors, payload], ...]`"""
    for point_id, vectors, payload in items_of("upsert", data, 3):
        vectors_check("upsert", point_id, vectors, schema)
        payload_check("upsert", f"of point {point_id}", payload)


def delete_check(data: Any, schema: OperationSchema) -> None:
    """`[id, ...]`"""
    ids_check("delete", data)


def update_vectors_check(data: Any, schema: OperationSchema) -> None:
    """`[[id, vectors], ...]`"""
    for point_id, vectors in items_of("update_vectors", data, 2):
        vectors_check("update_vectors", point_id, vectors, schema)


def payload_update_check(kind: str, data: Any) -> None:
    """`{"ids", "payload", "key"}` (set_payload, overwrite_payload)."""
    selection_of(kind, data)
    payload_check(kind, "given", data.get("payload"))
    if data.get("key") is not None:
        key_path_check(kind, data["key"])


def set_payload_check(data: Any, schema: OperationSchema) -> None:
    """`{"ids", "payload", "key"}`, or (a format-2 log's form) `[[id, payload to merge], ...]`."""
    if type(data) is list:
        for point_id, payload in items_of("set_payload", data, 2):
            payload_check("set_payload", f"of point {point_id}", payload)
        return
    payload_update_check("set_payload", data)


def overwrite_payload_check(data: Any, schema: OperationSchema) -> None:
    """`{"ids", "payload", "key"}`"""
    payload_update_check("overwrite_payload", data)


def delete_payload_check(data: Any, schema: OperationSchema) -> None:
    """`{"ids", "keys"}`"""
    keys = selection_of("delete_payload", data).get("keys")
    if type(keys) is not list:
        raise malformed("delete_payload", "`keys` must be a list of key paths")
    for key in keys:
        key_path_check("delete_payload", key)


def clear_payload_check(data: Any, schema: OperationSchema) -> None:
    """`{"ids"}`"""
    selection_of("clear_payload", data)


def delete_vectors_check(data: Any, schema: OperationSchema) -> None:
    """`{"ids", "names"}`, each name one of the collection's vectors."""
    names = selection_of("delete_vectors", data).get("names")
    if type(names) is not list or not all(type(name) is str for name in names):
        raise malformed("delete_vectors", "`names` must be a list of vector names")
    spec = schema.vectors
    for name in names:
        if spec is not None and name not in spec.dense and name not in spec.sparse:
            raise malformed("delete_vectors", f"{vector_label(name)} is not in the collection")


OPERATION_CHECKS: dict[str, Check] = {
    "upsert": upsert_check,
    "delete": delete_check,
    "set_payload": set_payload_check,
    "overwrite_payload": overwrite_payload_check,
    "delete_payload": delete_payload_check,
    "clear_payload": clear_payload_check,
    "update_vectors": update_vectors_check,
    "delete_vectors": delete_vectors_check,
}
KINDS = tuple(OPERATION_CHECKS)


# --- applying ----------------------------------------------------------------------------------------------

def point_changes(kind: str, data: Any) -> Iterator[tuple[Any, Change]]:
    """Each point a partial update touches, with how it changes the point's (vectors, payload)."""
    if kind == "update_vectors":
        for point_id, vectors in data:
            yield point_id, vectors_replaced(vectors)
        return
    if kind == "set_payload" and type(data) is list:
        for point_id, values in data:
            yield point_id, payload_merged(values)
        return
    change: Change
    if kind == "set_payload":
        key, values = data.get("key"), data["payload"]
        change = lambda vectors, payload: (vectors, payload_set_at(payload, key, values))  # noqa: E731
    elif kind == "overwrite_payload":
        key, values = data.get("key"), data["payload"]
        change = lambda vectors, payload: (vectors, payload_overwritten(payload, key, values))  # noqa: E731
    elif kind == "delete_payload":
        keys = data["keys"]
        change = lambda vectors, payload: (vectors, payload_delete_keys(payload, keys))  # noqa: E731
    elif kind == "clear_payload":
        change = lambda vectors, payload: (vectors, {})  # noqa: E731
    elif kind == "delete_vectors":
        names = data["names"]
        change = lambda vectors, payload: (vectors_without(vectors, names), payload)  # noqa: E731
    else:
        raise ValueError(f"unknown shard operation {kind!r}")
    for point_id in data["ids"]:
        yield point_id, change


def vectors_replaced(new: Any) -> Change:
    return lambda vectors, payload: (vectors_merge(vectors, new), payload)


def payload_merged(values: dict[str, Any]) -> Change:
    return lambda vectors, payload: (vectors, payload_set_at(payload, None, values))


def payload_overwritten(payload: dict[str, Any], key: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """`overwrite_payload`: the payload replaced, or with `key`, the object at the key replaced."""
    if key is None:
        return dict(values)
    cleared = payload_delete_keys(payload, [key])
    return payload_set_at(cleared, key, values)
