"""The check every shard operation passes before it may enter a write-ahead log, and again when a log is
replayed: one table keyed by the operation's kind.

An operation is `[kind, version, data]` (node/storage/shard.py applies it). `operation_check` refuses
(BadInput, so 400 in Qdrant's envelope) anything `Shard._apply_memory` could not apply or would store
wrongly: an unknown kind, a version that is not an unsigned 64-bit integer, data of the wrong shape, a point
id that is not canonical (an unsigned 64-bit integer or a lowercase hyphenated UUID), a vector that is not
float32 bytes of the collection's size, a payload that is not an object. Public routes parse requests into
operations (node/storage/points.py) and already refuse bad input there; this check is the shard's own guard,
so an operation from any route (a peer's forwarded update, a transfer's replay) is refused before anything
is written, and a log record that fails it on replay is treated as damage (node/storage/shard.py).

A new kind plugs in with one entry in `OPERATION_CHECKS`: a function `(data, schema) -> None` that raises
BadInput when the data is not what the kind's apply step expects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.errors import BadInput

U64_LIMIT = 1 << 64
UUID_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class OperationSchema:
    """What a collection's config says about its operations: the size of its one unnamed vector (None:
    only checked to be whole float32 values, for a shard opened without its collection's config)."""

    vector_size: int | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OperationSchema:
        vectors = config.get("vectors")
        size = vectors.get("size") if isinstance(vectors, dict) else None
        return cls(size if type(size) is int else None)


class MalformedOperation(BadInput):
    """An operation a shard refuses to log or apply."""


Check = Callable[[Any, OperationSchema], None]


def operation_check(operation: Any, schema: OperationSchema) -> None:
    """Refuse (MalformedOperation, a 400) an operation that is not well formed for this collection."""
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


def items_of(kind: str, data: Any, width: int) -> list[Any]:
    """The data as a list of `width`-long items, each starting with a valid point id."""
    if type(data) is not list:
        raise malformed(kind, f"data must be a list, got {type(data).__name__}")
    for item in data:
        if type(item) is not list or len(item) != width:
            raise malformed(kind, f"every item must be a list of {width}, got {abbreviated(item)}")
        if not point_id_valid(item[0]):
            raise malformed(kind, f"point id {abbreviated(item[0])} is not an unsigned 64-bit integer or a UUID")
    return data


def vector_check(kind: str, point_id: Any, vector: Any, schema: OperationSchema) -> None:
    if type(vector) is not bytes:
        raise malformed(kind, f"the vector of point {point_id} must be float32 bytes, got {type(vector).__name__}")
    expected = schema.vector_size * FLOAT32_BYTES if schema.vector_size is not None else None
    if (expected is not None and len(vector) != expected) or len(vector) % FLOAT32_BYTES or not vector:
        raise malformed(kind, f"the vector of point {point_id} has {len(vector)} bytes, expected "
                              f"{expected if expected is not None else 'a multiple of 4'}")


def payload_check(kind: str, point_id: Any, payload: Any) -> None:
    if type(payload) is not dict or not all(type(key) is str for key in payload):
        raise malformed(kind, f"the payload of point {point_id} must be an object with text keys")


def upsert_check(data: Any, schema: OperationSchema) -> None:
    """`[[id, vector float32 bytes, payload], ...]`"""
    for point_id, vector, payload in items_of("upsert", data, 3):
        vector_check("upsert", point_id, vector, schema)
        payload_check("upsert", point_id, payload)


def delete_check(data: Any, schema: OperationSchema) -> None:
    """`[id, ...]`"""
    if type(data) is not list:
        raise malformed("delete", f"data must be a list of point ids, got {type(data).__name__}")
    for point_id in data:
        if not point_id_valid(point_id):
            raise malformed("delete", f"point id {abbreviated(point_id)} is not an unsigned 64-bit integer or "
                                      f"a UUID")


def set_payload_check(data: Any, schema: OperationSchema) -> None:
    """`[[id, payload to merge], ...]`"""
    for point_id, payload in items_of("set_payload", data, 2):
        payload_check("set_payload", point_id, payload)


OPERATION_CHECKS: dict[str, Check] = {
    "upsert": upsert_check,
    "delete": delete_check,
    "set_payload": set_payload_check,
}


def log_record_check(record: Any, schema: OperationSchema) -> None:
    """A write-ahead log record `[seq, kind, version, data]`, as `Shard.apply` writes it."""
    if type(record) is not list or len(record) != 4:
        raise MalformedOperation(f"not a log record [seq, kind, version, data]: {abbreviated(record)}")
    if type(record[0]) is not int or record[0] < 1:
        raise MalformedOperation(f"log record sequence number {abbreviated(record[0])} is not a positive integer")
    operation_check(record[1:], schema)
