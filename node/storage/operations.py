"""Shard operations: their shapes, the check each passes before it is written to the WAL, and how each one
changes a point.

An operation is `[kind, version, data]` (the version is given by the node that took the client's request):
    upsert             [[id, vectors, payload], ...]      vectors in canonical form (node.protocol.Vectors)
    delete             [id, ...]
    set_payload        {"ids", "payload", "key"}          merge into the payload, or into the object at `key`
    overwrite_payload  {"ids", "payload", "key"}          replace the payload (or the value at `key`)
    delete_payload     {"ids", "keys"}
    clear_payload      {"ids"}
    update_vectors     [[id, vectors], ...]               replace the named vectors given, keep the others
    delete_vectors     {"ids", "names"}
(`set_payload` as `[[id, payload], ...]` is the form of format-2 logs; it is still read.) Updates other than
upsert and delete change only points that exist. Requests are fully validated against the collection
before they become operations (node/storage/updates.py); `operation_check` guards the shard itself, so a
malformed operation from any peer is refused before it can enter a log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from node.errors import BadInput
from node.storage.payload import path_parse, payload_delete_keys, payload_set_at
from node.storage.vectors import vectors_merge, vectors_without

Operation = list[Any]
Change = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]]  # (vectors, payload) -> new ones
KINDS = ("upsert", "delete", "set_payload", "overwrite_payload", "delete_payload", "clear_payload",
         "update_vectors", "delete_vectors")
SELECTED_KINDS = ("set_payload", "overwrite_payload", "delete_payload", "clear_payload", "delete_vectors")


def id_valid(value: Any) -> bool:
    return (type(value) is int and 0 <= value < 1 << 64) or type(value) is str


def vectors_valid(value: Any) -> bool:
    if type(value) is bytes:
        return len(value) % 4 == 0
    if type(value) is not dict:
        return False
    for name, vector in value.items():
        if type(name) is not str:
            return False
        if type(vector) is bytes:
            if len(vector) % 4:
                return False
        elif not (type(vector) in (list, tuple) and len(vector) == 2 and type(vector[0]) is bytes
                  and type(vector[1]) is bytes and len(vector[0]) == len(vector[1]) and len(vector[0]) % 4 == 0):
            return False
    return True


def operation_check(operation: Any) -> None:
    """Refuse (BadInput) an operation that is not well formed; nothing is written for it."""
    if type(operation) is not list or len(operation) != 3 or operation[0] not in KINDS \
            or type(operation[1]) is not int:
        raise BadInput(f"Malformed shard operation: {str(operation)[:200]}")
    kind, _, data = operation
    valid = False
    if kind == "upsert":
        valid = type(data) is list and all(
            type(item) in (list, tuple) and len(item) == 3 and id_valid(item[0]) and vectors_valid(item[1])
            and type(item[2]) is dict for item in data)
    elif kind == "update_vectors":
        valid = type(data) is list and all(
            type(item) in (list, tuple) and len(item) == 2 and id_valid(item[0]) and vectors_valid(item[1])
            for item in data)
    elif kind == "delete":
        valid = type(data) is list and all(id_valid(item) for item in data)
    elif kind == "set_payload" and type(data) is list:  # format-2 logs
        valid = all(type(item) in (list, tuple) and len(item) == 2 and id_valid(item[0]) and type(item[1]) is dict
                    for item in data)
    elif type(data) is dict and type(data.get("ids")) is list and all(id_valid(i) for i in data["ids"]):
        valid = selected_valid(kind, data)
    if not valid:
        raise BadInput(f"Malformed shard operation `{kind}`")


def selected_valid(kind: str, data: dict[str, Any]) -> bool:
    try:
        if kind in ("set_payload", "overwrite_payload"):
            if data.get("key") is not None:
                path_parse(data["key"])
            return type(data.get("payload")) is dict and (data.get("key") is None or type(data["key"]) is str)
        if kind == "delete_payload":
            keys = data.get("keys")
            return type(keys) is list and all(type(key) is str and path_parse(key) for key in keys)
        if kind == "delete_vectors":
            return type(data.get("names")) is list and all(type(name) is str for name in data["names"])
    except BadInput:
        return False
    return kind == "clear_payload"


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
