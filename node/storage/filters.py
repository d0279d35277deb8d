"""Qdrant's filter syntax: checked and compiled once per request, then matched against each point.

A filter is `{"must", "should", "must_not", "min_should"}` (each a condition or a list of them; an empty or
missing clause constrains nothing). Conditions: a field condition `{"key", "match" | "range" |
"values_count" | "is_empty" | "is_null"}`, `{"is_empty": {"key"}}`, `{"is_null": {"key"}}`,
`{"has_id": [ids]}`, `{"has_vector": name}`, `{"nested": {"key", "filter"}}` and a filter itself. Keys are
payload paths (node/storage/payload.py: `a.b`, `a[].b`). Matching follows Qdrant's rules: a reached array
is matched element by element; `match.value` compares strings, integers and booleans by type (1 is not
true, nor 1.0); `match.text` needs every word of the query among the value's words (no text index here);
`except` never matches an absent or null value; `range` applies to numbers, or to RFC 3339 datetimes when
its bounds are strings.

`filter_compile` raises BadInput / ValidationError for a filter Qdrant refuses, so an update selected by a
bad filter fails before anything is written.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from typing import Any

from node.errors import BadInput, FormatError, ValidationError
from node.protocol import PointId, point_id_normalize
from node.storage.payload import path_parse, values_at, values_flat

Matcher = Callable[[PointId, dict[str, Any], Any], bool]  # (id, payload, vectors) -> matches
ValueTest = Callable[[Any], bool]
FIELD_CONDITIONS = ("match", "range", "values_count", "is_empty", "is_null", "geo_radius", "geo_bounding_box",
                    "geo_polygon")
RANGE_BOUNDS = ("lt", "lte", "gt", "gte")
_WORD = re.compile(r"[^\W_]+")


def always(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
    return True


def filter_compile(flt: Any, where: str = "filter") -> Matcher:
    """A matcher for a filter (None or {} matches every point)."""
    if flt is None:
        return always
    if not isinstance(flt, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected a filter object")
    unknown = set(flt) - {"must", "should", "must_not", "min_should"}
    if unknown:
        raise FormatError(f"Format error in JSON body: {where}: unknown field `{sorted(unknown)[0]}`, expected "
                          f"one of `should`, `min_should`, `must`, `must_not`")
    must = [condition_compile(c, f"{where}.must[{i}]") for i, c in enumerate(clause(flt.get("must")))]
    should = [condition_compile(c, f"{where}.should[{i}]") for i, c in enumerate(clause(flt.get("should")))]
    must_not = [condition_compile(c, f"{where}.must_not[{i}]") for i, c in enumerate(clause(flt.get("must_not")))]
    min_should: tuple[list[Matcher], int] | None = None
    if flt.get("min_should") is not None:
        spec = flt["min_should"]
        if not isinstance(spec, dict) or not isinstance(spec.get("min_count"), int):
            raise FormatError(f"Format error in JSON body: {where}.min_should: expected {{\"conditions\", "
                              f"\"min_count\"}}")
        if spec["min_count"] < 1:
            raise ValidationError(f"Validation error in JSON body: [{where}.min_should.min_count: value "
                                  f"{spec['min_count']} invalid, must be 1 or larger]")
        min_should = ([condition_compile(c, f"{where}.min_should.conditions[{i}]")
                       for i, c in enumerate(clause(spec.get("conditions")))], spec["min_count"])
    if not (must or should or must_not or min_should):
        return always

    def matches(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
        for condition in must:
            if not condition(point_id, payload, vectors):
                return False
        for condition in must_not:
            if condition(point_id, payload, vectors):
                return False
        if should and not any(condition(point_id, payload, vectors) for condition in should):
            return False
        if min_should is not None:
            conditions, count = min_should
            if sum(1 for condition in conditions if condition(point_id, payload, vectors)) < count:
                return False
        return True
    return matches


def clause(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def condition_compile(condition: Any, where: str) -> Matcher:
    if not isinstance(condition, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected a condition object")
    if "key" in condition:
        return field_compile(condition, where)
    if "has_id" in condition:
        ids_given = condition["has_id"]
        if not isinstance(ids_given, list):
            raise FormatError(f"Format error in JSON body: {where}.has_id: expected a list of point ids")
        try:
            ids = frozenset(point_id_normalize(value) for value in ids_given)
        except ValueError as error:
            raise FormatError(f"Format error in JSON body: {where}.has_id: {error}") from None
        return lambda point_id, payload, vectors: point_id in ids
    if "has_vector" in condition:
        name = condition["has_vector"]
        if not isinstance(name, str):
            raise FormatError(f"Format error in JSON body: {where}.has_vector: expected a vector name")
        return lambda point_id, payload, vectors: (name == "" and type(vectors) is bytes) or (
            type(vectors) is dict and name in vectors)
    if "is_empty" in condition or "is_null" in condition:
        kind = "is_empty" if "is_empty" in condition else "is_null"
        inner = condition[kind]
        if not isinstance(inner, dict) or not isinstance(inner.get("key"), str):
            raise FormatError(f"Format error in JSON body: {where}.{kind}: expected {{\"key\": ...}}")
        path = path_parse(inner["key"])
        test = is_empty if kind == "is_empty" else is_null
        return lambda point_id, payload, vectors: test(values_at(payload, path))
    if "nested" in condition:
        return nested_compile(condition["nested"], f"{where}.nested")
    if set(condition) <= {"must", "should", "must_not", "min_should"}:
        return filter_compile(condition, where)
    raise FormatError(f"Format error in JSON body: {where}: unknown condition {sorted(condition)}")


def nested_compile(nested: Any, where: str) -> Matcher:
    """Matches when one element (an object) of the array at `key` satisfies the whole inner filter."""
    if not isinstance(nested, dict) or not isinstance(nested.get("key"), str):
        raise FormatError(f"Format error in JSON body: {where}: expected {{\"key\", \"filter\"}}")
    key = nested["key"]
    path = path_parse(key[:-2] if key.endswith("[]") and len(key) > 2 else key)
    inner = filter_compile(nested.get("filter"), f"{where}.filter")

    def matches(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
        for value in values_at(payload, path):
            if type(value) is list:
                for element in value:
                    if type(element) is dict and inner(point_id, element, None):
                        return True
        return False
    return matches


def field_compile(condition: dict[str, Any], where: str) -> Matcher:
    key = condition["key"]
    if not isinstance(key, str):
        raise FormatError(f"Format error in JSON body: {where}.key: expected a string")
    given = [name for name in FIELD_CONDITIONS if condition.get(name) is not None]
    if not given:
        raise ValidationError(f"Validation error in JSON body: [{where}: At least one field condition must be "
                              f"specified]")
    path = path_parse(key)
    tests = [field_test(name, condition[name], key, path, where) for name in given]
    if len(tests) == 1:
        return tests[0]
    return lambda point_id, payload, vectors: all(test(point_id, payload, vectors) for test in tests)


def field_test(name: str, spec: Any, key: str, path: tuple[Any, ...], where: str) -> Matcher:
    """One condition on a field (a field condition may carry several, all of which must hold)."""
    if name in ("is_empty", "is_null"):
        if not isinstance(spec, bool):
            raise FormatError(f"Format error in JSON body: {where}.{name}: expected a boolean")
        test = is_empty if name == "is_empty" else is_null

        def emptiness(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
            return test(values_at(payload, path)) == spec
        return emptiness
    if name == "values_count":
        bounds = bounds_parse(spec, f"{where}.values_count", numbers_only=True)

        def counted(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
            return any(in_bounds(count, bounds) for count in value_counts(values_at(payload, path)))
        return counted
    if name.startswith("geo_"):
        raise BadInput(f"{where}: geo conditions are not supported by shardsim")
    value_test = match_compile(spec, f"{where}.match") if name == "match" else range_compile(spec, f"{where}.range")

    def valued(point_id: PointId, payload: dict[str, Any], vectors: Any) -> bool:
        return any(value_test(value) for value in values_flat(payload, key))
    return valued


def is_empty(values: list[Any]) -> bool:
    """No value, or only nulls and empty arrays."""
    return all(value is None or value == [] for value in values)


def is_null(values: list[Any]) -> bool:
    """A null value, or an array holding a null."""
    return any(value is None or (type(value) is list and None in value) for value in values)


def value_counts(values: list[Any]) -> list[int]:
    counts = [len(value) if type(value) is list else 0 if value is None else 1 for value in values]
    return counts or [0]


def same_value(value: Any, wanted: Any) -> bool:
    """Qdrant's exact match: booleans, integers, floats and strings never equal one another."""
    return type(value) is type(wanted) and value == wanted


def match_compile(match: Any, where: str) -> ValueTest:
    if not isinstance(match, dict) or len(match) != 1:
        raise FormatError(f"Format error in JSON body: {where}: expected one of `value`, `text`, `text_any`, "
                          f"`phrase`, `any`, `except`")
    (kind, wanted), = match.items()
    if kind == "value":
        if type(wanted) not in (str, int, bool):
            raise FormatError(f"Format error in JSON body: {where}.value: expected a string, an integer or a "
                              f"boolean")
        return lambda value: same_value(value, wanted)
    if kind in ("any", "except"):
        if not isinstance(wanted, list) or not all(type(item) in (str, int) for item in wanted):
            raise FormatError(f"Format error in JSON body: {where}.{kind}: expected a list of strings or "
                              f"integers")
        choices = [(type(item), item) for item in wanted]
        keys = frozenset(choices)
        if kind == "any":
            return lambda value: (type(value), value) in keys if type(value) in (str, int) else False
        return lambda value: value is not None and not ((type(value), value) in keys if type(value) in (str, int)
                                                         else False)
    if kind in ("text", "text_any", "phrase"):
        if not isinstance(wanted, str):
            raise FormatError(f"Format error in JSON body: {where}.{kind}: expected a string")
        query = words(wanted)
        if kind == "text":
            return lambda value: type(value) is str and bool(query) and set(query) <= set(words(value))
        if kind == "text_any":
            return lambda value: type(value) is str and bool(set(query) & set(words(value)))
        return lambda value: type(value) is str and bool(query) and phrase_in(query, words(value))
    raise FormatError(f"Format error in JSON body: {where}: unknown variant `{kind}`")


def words(text: str) -> list[str]:
    """Qdrant's default word tokenizer without an index: runs of letters and digits, lowercased."""
    return [word.lower() for word in _WORD.findall(text)]


def phrase_in(phrase: list[str], text: list[str]) -> bool:
    return any(text[start:start + len(phrase)] == phrase for start in range(len(text) - len(phrase) + 1))


def bounds_parse(spec: Any, where: str, numbers_only: bool = False) -> dict[str, Any]:
    if not isinstance(spec, dict) or not set(spec) <= set(RANGE_BOUNDS):
        raise FormatError(f"Format error in JSON body: {where}: expected bounds among `lt`, `lte`, `gt`, `gte`")
    bounds = {name: value for name, value in spec.items() if value is not None}
    for name, value in bounds.items():
        if type(value) not in (int, float) and (numbers_only or type(value) is not str):
            raise FormatError(f"Format error in JSON body: {where}.{name}: expected a number")
    return bounds


def in_bounds(value: Any, bounds: dict[str, Any]) -> bool:
    return (("lt" not in bounds or value < bounds["lt"]) and ("lte" not in bounds or value <= bounds["lte"])
            and ("gt" not in bounds or value > bounds["gt"]) and ("gte" not in bounds or value >= bounds["gte"]))


def range_compile(spec: Any, where: str) -> ValueTest:
    bounds = bounds_parse(spec, where)
    if any(type(value) is str for value in bounds.values()):
        try:
            moments = {name: datetime_parse(value) for name, value in bounds.items()}
        except ValueError:
            raise FormatError(f"Format error in JSON body: {where}: bounds must all be numbers or all RFC 3339 "
                              f"datetimes") from None

        def datetime_test(value: Any) -> bool:
            if type(value) is not str:
                return False
            try:
                return in_bounds(datetime_parse(value), moments)
            except ValueError:
                return False
        return datetime_test
    return lambda value: type(value) in (int, float) and not math.isnan(value) and in_bounds(value, bounds)


def datetime_parse(value: Any) -> datetime.datetime:
    """An RFC 3339 datetime (a date alone is midnight; no zone is UTC)."""
    if type(value) is not str:
        raise ValueError("not a datetime")
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
