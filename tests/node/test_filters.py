"""Qdrant's filter syntax (node/storage/filters.py) and payload paths (node/storage/payload.py), as pure
functions on literal payloads: what each condition matches, and which filters are refused before anything
is read or written."""

from __future__ import annotations

from typing import Any

import pytest

from node.errors import BadInput, FormatError, ValidationError
from node.storage.filters import filter_compile
from node.storage.payload import path_parse, payload_delete_keys, payload_select, payload_set_at, values_at

POINTS: dict[int, dict[str, Any]] = {
    1: {"city": "Berlin", "price": 10.0, "count": 3, "tags": ["a", "b"], "ok": True},
    2: {"city": ["Berlin", "London"], "price": 11, "tags": []},
    3: {"city": None, "price": None},
    4: {"country": {"name": "Germany", "cities": [{"name": "Berlin", "pop": 3.6}, {"name": "Bonn", "pop": 0.3}]}},
    5: {"text": "The quick brown Fox jumps", "date": "2024-03-01T10:00:00Z", "nums": [1, 2, None]},
    6: {},
}


def matching(flt: dict[str, Any], vectors: dict[int, Any] | None = None) -> list[int]:
    matches = filter_compile(flt)
    return [pid for pid, payload in POINTS.items() if matches(pid, payload, (vectors or {}).get(pid, {}))]


def field(key: str, **condition: Any) -> dict[str, Any]:
    return {"must": [{"key": key, **condition}]}


def test_match_value_compares_by_type_and_through_arrays() -> None:
    assert matching(field("city", match={"value": "Berlin"})) == [1, 2]
    assert matching(field("count", match={"value": 3})) == [1]
    assert matching(field("ok", match={"value": True})) == [1]
    assert matching(field("count", match={"value": True})) == [], "an integer is not a boolean"
    assert matching(field("price", match={"value": 10})) == [], "10.0 is a float: an integer match misses it"


def test_match_any_except_and_text() -> None:
    assert matching(field("city", match={"any": ["London", "Paris"]})) == [2]
    assert matching(field("city", match={"any": []})) == []
    assert matching(field("city", match={"except": ["Berlin"]})) == [2], "null and absent values never match"
    assert matching(field("text", match={"text": "fox quick"})) == [5]
    assert matching(field("text", match={"text": "quick fax"})) == []
    assert matching(field("text", match={"text_any": "fax brown"})) == [5]
    assert matching(field("text", match={"phrase": "brown fox"})) == [5]
    assert matching(field("text", match={"phrase": "fox brown"})) == []


def test_range_numbers_and_datetimes() -> None:
    assert matching(field("price", range={"gte": 10, "lt": 11})) == [1]
    assert matching(field("price", range={"gt": 10})) == [2]
    assert matching(field("date", range={"gte": "2024-03-01", "lt": "2024-03-02T00:00:00+00:00"})) == [5]
    assert matching(field("ok", range={"gte": 0})) == [], "a boolean is not a number"


def test_is_empty_is_null_and_values_count() -> None:
    assert matching({"must": [{"is_empty": {"key": "city"}}]}) == [3, 4, 5, 6]
    assert matching({"must": [{"is_empty": {"key": "tags"}}]}) == [2, 3, 4, 5, 6]
    assert matching({"must": [{"is_null": {"key": "city"}}]}) == [3]
    assert matching({"must": [{"is_null": {"key": "nums"}}]}) == [5], "an array holding a null is null"
    assert matching(field("city", is_empty=False)) == [1, 2]
    assert matching(field("tags", values_count={"gte": 2})) == [1]
    assert matching(field("city", values_count={"lt": 1})) == [3, 4, 5, 6]


def test_nested_keys_and_nested_condition() -> None:
    assert matching(field("country.name", match={"value": "Germany"})) == [4]
    assert matching(field("country.cities[].name", match={"value": "Bonn"})) == [4]
    assert matching(field("country.cities[1].name", match={"value": "Berlin"})) == []
    assert matching(field("country.cities.name", match={"value": "Bonn"})) == [], "a key does not enter an array"
    both = {"must": [{"key": "name", "match": {"value": "Bonn"}}, {"key": "pop", "range": {"gt": 1}}]}
    assert matching({"must": [{"key": "country.cities[].name", "match": {"value": "Bonn"}},
                              {"key": "country.cities[].pop", "range": {"gt": 1}}]}) == [4]
    assert matching({"must": [{"nested": {"key": "country.cities", "filter": both}}]}) == [], \
        "nested: one element must satisfy the whole inner filter"
    one = {"must": [{"key": "name", "match": {"value": "Bonn"}}, {"key": "pop", "range": {"lt": 1}}]}
    assert matching({"must": [{"nested": {"key": "country.cities[]", "filter": one}}]}) == [4]


def test_clauses_has_id_and_has_vector() -> None:
    assert matching({"should": [{"has_id": [1, 3]}, field("price", match={"value": 11})["must"][0]]}) == [1, 2, 3]
    assert matching({"must_not": [{"has_id": [1, 2, 3, 4]}]}) == [5, 6]
    assert matching({"must": [], "should": []}) == [1, 2, 3, 4, 5, 6], "empty clauses constrain nothing"
    conditions = [{"has_id": [1]}, {"key": "city", "match": {"value": "Berlin"}}, {"is_null": {"key": "price"}}]
    assert matching({"min_should": {"conditions": conditions, "min_count": 2}}) == [1]
    assert matching({"must": [{"has_vector": "text"}]}, {2: {"text": [b"", b""]}, 3: b"\0\0\0\0"}) == [2]
    assert matching({"must": [{"has_vector": ""}]}, {2: {"text": [b"", b""]}, 3: b"\0\0\0\0"}) == [3]


@pytest.mark.parametrize("flt, error", [
    ({"must": [{"key": "city"}]}, ValidationError),
    ({"must": [{"key": "city", "match": {"value": 1.5}}]}, FormatError),
    ({"must": [{"key": "city", "range": {"gt": "x", "lt": 3}}]}, FormatError),
    ({"min_should": {"conditions": [], "min_count": 0}}, ValidationError),
    ({"must": [{"has_id": ["not-an-id"]}]}, FormatError),
    ({"must": [{"key": "a..b", "match": {"value": 1}}]}, BadInput),
    ({"maybe": []}, FormatError),
])
def test_refused_filters(flt: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        filter_compile(flt)


def test_payload_paths_read_set_and_delete() -> None:
    payload = {"a": {"b": [{"c": 1}, {"c": 2, "d": 3}]}, "e": "x"}
    assert path_parse('a.b[].c') == ("a", "b", None, "c") and path_parse('"a.b"[0]') == ("a.b", 0)
    assert values_at(payload, path_parse("a.b[].c")) == [1, 2]
    assert payload_set_at(payload, "a.b[0]", {"z": 9})["a"]["b"][0] == {"c": 1, "z": 9}
    assert payload_set_at(payload, "a.new.deep", {"z": 9})["a"]["new"] == {"deep": {"z": 9}}
    assert payload_set_at(payload, None, {"e": "y"}) == {**payload, "e": "y"}
    assert payload_delete_keys(payload, ["a.b[].c", "e"]) == {"a": {"b": [{}, {"d": 3}]}}
    assert payload_delete_keys(payload, ["a.b[]"]) == {"a": {"b": []}, "e": "x"}
    assert payload == {"a": {"b": [{"c": 1}, {"c": 2, "d": 3}]}, "e": "x"}, "operations never change their input"
    assert payload_select(payload, ["a.b[].d"]) == {"a": {"b": [{}, {"d": 3}]}}
    assert payload_select(payload, {"exclude": ["a"]}) == {"e": "x"}
