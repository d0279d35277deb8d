"""Payload paths as Qdrant writes them, and the payload operations that use them.

A key is a path: `a.b` (object keys), `a[]` (every element of an array), `a[0]` (one element), `"a.b"`
(a quoted key with dots in it), combined as in `country.cities[].name`. Reading a path gives every value
it reaches (filters, `values_count`, `is_empty`); `set_payload` with a `key` merges into the object at the
path (made where missing); `delete_payload` removes what the path reaches; `with_payload` include/exclude
lists select by path. Operations return new payloads and never change the one they are given, because
the shard's records may be shared with readers.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from node.errors import BadInput

PathItem = str | int | None  # an object key, an array index, or None for `[]` (every element)
_KEY = re.compile(r'"([^"]*)"|([^.\[\]"]+)')
_BRACKETS = re.compile(r"\[(\d*)\]")
_PATH_CACHE: dict[str, tuple[PathItem, ...]] = {}


def path_parse(key: str) -> tuple[PathItem, ...]:
    """`a.b[].c[0]` -> ("a", "b", None, "c", 0). Raises BadInput for a malformed path."""
    cached = _PATH_CACHE.get(key)
    if cached is not None:
        return cached
    items: list[PathItem] = []
    position = 0
    while True:
        match = _KEY.match(key, position)
        if match is None:
            raise BadInput(f"Invalid key path: `{key}`")
        items.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end()
        while (bracket := _BRACKETS.match(key, position)) is not None:
            items.append(int(bracket.group(1)) if bracket.group(1) else None)
            position = bracket.end()
        if position == len(key):
            break
        if key[position] != "." or position + 1 == len(key):
            raise BadInput(f"Invalid key path: `{key}`")
        position += 1
    result = tuple(items)
    if len(_PATH_CACHE) < 4096:
        _PATH_CACHE[key] = result
    return result


def values_at(payload: Any, path: tuple[PathItem, ...]) -> list[Any]:
    """Every value the path reaches, arrays kept whole (a missing key reaches nothing)."""
    found: list[Any] = []

    def walk(value: Any, depth: int) -> None:
        if depth == len(path):
            found.append(value)
            return
        item = path[depth]
        if type(item) is str:
            if type(value) is dict and item in value:
                walk(value[item], depth + 1)
        elif type(value) is list:
            if item is None:
                for element in value:
                    walk(element, depth + 1)
            elif item < len(value):  # type: ignore[operator]
                walk(value[item], depth + 1)  # type: ignore[index]
    walk(payload, 0)
    return found


def values_flat(payload: Any, key: str) -> list[Any]:
    """The values a key reaches, a reached array unwrapped one level (what `match` and `range` test)."""
    path = path_parse(key)
    if len(path) == 1 and type(payload) is dict:  # the common case: a top-level key
        if path[0] not in payload:
            return []
        value = payload[path[0]]
        return value if type(value) is list else [value]
    flat: list[Any] = []
    for value in values_at(payload, path):
        if type(value) is list:
            flat.extend(value)
        else:
            flat.append(value)
    return flat


def payload_set_at(payload: dict[str, Any], key: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """`set_payload`: merge `values` into the payload's top level, or into the object at `key` (objects are
    made where the path is missing or holds something else; `[]` merges into every element)."""
    if key is None:
        return {**payload, **copy.deepcopy(values)}
    path = path_parse(key)
    result = copy.deepcopy(payload)

    def merge(target: Any, depth: int) -> Any:
        if depth == len(path):
            base = target if type(target) is dict else {}
            base.update(copy.deepcopy(values))
            return base
        item = path[depth]
        if type(item) is str:
            base = target if type(target) is dict else {}
            base[item] = merge(base.get(item), depth + 1)
            return base
        if type(target) is not list:
            return target  # an index into something that is not an array: nothing to set
        if item is None:
            return [merge(element, depth + 1) for element in target]
        if item < len(target):  # type: ignore[operator]
            target[item] = merge(target[item], depth + 1)  # type: ignore[index]
        return target
    return merge(result, 0)  # type: ignore[no-any-return]


def payload_delete_keys(payload: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`delete_payload`: remove what each key reaches (a final `[]` empties the array; a final index is
    left alone, as Qdrant does)."""
    result = copy.deepcopy(payload)
    for key in keys:
        path_remove(result, path_parse(key), 0)
    return result


def path_remove(target: Any, path: tuple[PathItem, ...], depth: int) -> None:
    item = path[depth]
    last = depth == len(path) - 1
    if type(item) is str:
        if type(target) is dict and item in target:
            if last:
                del target[item]
            else:
                path_remove(target[item], path, depth + 1)
    elif type(target) is list:
        if item is None:
            if last:
                target.clear()
            else:
                for element in target:
                    path_remove(element, path, depth + 1)
        elif not last and item < len(target):  # type: ignore[operator]
            path_remove(target[item], path, depth + 1)  # type: ignore[index]


def payload_select(payload: dict[str, Any], with_payload: Any) -> dict[str, Any] | None:
    """`with_payload`: true, false, a list of keys, or `{"include": [...]}` / `{"exclude": [...]}`; keys may
    be paths (`a.b`, `a[].b`)."""
    if with_payload is True or with_payload is None:
        return payload
    if with_payload is False:
        return None
    if isinstance(with_payload, list):
        return selected(payload, tree_build(with_payload), include=True)
    if isinstance(with_payload, dict):
        if "include" in with_payload:
            return selected(payload, tree_build(with_payload["include"]), include=True)
        if "exclude" in with_payload:
            return selected(payload, tree_build(with_payload["exclude"]), include=False)
    return payload


def tree_build(keys: list[str]) -> dict[PathItem, Any]:
    """Keys as a prefix tree (`True` marks a selected end): `a.b`, `c` -> {"a": {"b": True}, "c": True}."""
    tree: dict[PathItem, Any] = {}
    for key in keys:
        node = tree
        path = path_parse(key)
        for item in path[:-1]:
            child = node.setdefault(item, {})
            if child is True:
                break
            node = child
        else:
            node[path[-1]] = True
    return tree


def selected(value: Any, tree: dict[PathItem, Any], include: bool) -> Any:
    if type(value) is dict:
        out = {}
        for key, item in value.items():
            branch = tree.get(key)
            if branch is None:
                if not include:
                    out[key] = item
            elif branch is True:
                if include:
                    out[key] = item
            else:
                out[key] = selected(item, branch, include)
        return out
    if type(value) is list:
        branch = tree.get(None)
        if branch is None:
            return [] if include else value
        if branch is True:
            return value if include else []
        return [selected(item, branch, include) for item in value]
    return value
