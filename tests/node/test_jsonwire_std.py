"""node/jsonwire.py's `std_loads`, `std_dumps` and `json_dumps` give the standard library's answers, byte for byte
and value for value, only faster."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from node import jsonwire

TRICKY_STRINGS = ["", "plain", "é", "\u2028", "\x7f", "\x00\x01\x1f", '"\\/', "\ud83d\ude00", "1e-05", "0.0000",
                  "a,b:c", "x" * 40, "1234567890123456789012"]
TRICKY_FLOATS = [0.0, -0.0, 1.0, 100.0, 0.1, 1e-4, 1e-5, 6.5e-5, 1.5e-9, 1e-10, 1e15, 1e16, 1.5e16, 1e300, 5e-324,
                 1.7976931348623157e308, 123456789012345678.0]
TRICKY_INTS = [0, -1, 2**53, 2**63 - 1, -2**63, 2**64 - 1, 2**64, -2**63 - 1, 10**30, -10**19 + 1]


def value_random(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(TRICKY_STRINGS) + rng.choice(["", str(rng.random())])
    if kind == 1:
        return rng.choice(TRICKY_FLOATS) * rng.choice([1, -1])
    if kind == 2:
        return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] if rng.random() < 0.5 else \
            round(rng.uniform(-1, 1) * 10 ** rng.randint(-12, 20), rng.randint(0, 8))
    if kind == 3:
        return rng.choice(TRICKY_INTS) if rng.random() < 0.5 else rng.randint(-10**6, 10**6)
    if kind == 4:
        return rng.choice([None, True, False])
    if kind == 5:
        return [round(rng.uniform(-1, 1), 4) for _ in range(rng.randrange(70))]
    if kind == 6:
        return [value_random(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 7:
        return tuple(value_random(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {rng.choice(TRICKY_STRINGS) + str(i): value_random(rng, depth + 1) for i in range(rng.randrange(5))}


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(finite(item) for item in value)
    if isinstance(value, dict):
        return all(finite(item) for item in value.values())
    return True


def test_dumps_writes_the_bytes_json_writes_and_loads_reads_them_back_as_json_does() -> None:
    rng = random.Random(7)
    fast_paths = 0
    for _ in range(3000):
        value = value_random(rng)
        if not finite(value):
            continue
        expected = json.dumps(value, separators=(",", ":"))
        assert jsonwire.std_dumps(value) == expected
        loaded = jsonwire.std_loads(expected)
        assert loaded == json.loads(expected) and repr(loaded) == repr(json.loads(expected))
        assert jsonwire.std_loads(expected.encode()) == loaded
        fast_paths += jsonwire.orjson.loads(expected.encode()) == loaded if not jsonwire.long_digit_run(
            expected.encode()) else 0
    assert fast_paths > 1000, "most values go the fast way"


def test_a_history_record_of_vectors_goes_the_fast_way_in_both_directions(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    points = [{"id": i, "vector": [round(rng.uniform(-1, 1), 4) for _ in range(64)], "payload": {"w": i}}
              for i in range(100)]
    record = {"type": "invoke", "time": 1.25, "op_id": 7, "f": "upsert", "value": {"points": points}, "error": None}
    expected = json.dumps(record, separators=(",", ":"), default=str)

    def slow(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the standard library was used")
    monkeypatch.setattr(jsonwire.json, "dumps", slow)
    monkeypatch.setattr(jsonwire.json, "loads", slow)
    assert jsonwire.std_dumps(record, default=str) == expected
    assert jsonwire.std_loads(expected) == record


def test_json_dumps_writes_the_bytes_json_writes_with_its_spaces_and_refuses_non_finite_floats() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        value = value_random(rng)
        try:
            expected: Any = json.dumps(value, allow_nan=False).encode()
        except ValueError:
            with pytest.raises(ValueError):
                jsonwire.json_dumps(value)
            continue
        assert jsonwire.json_dumps(value) == expected
    for odd in ({"a": float("nan")}, [1.0, float("inf")], {"s": "a, b: c", "t": "x\\y\"z"}, {"k": None}):
        try:
            expected = json.dumps(odd, allow_nan=False).encode()
        except ValueError:
            with pytest.raises(ValueError):
                jsonwire.json_dumps(odd)
            continue
        assert jsonwire.json_dumps(odd) == expected


def test_a_response_of_vectors_is_written_the_fast_way(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(2)
    response = {"result": {"points": [{"id": i, "payload": {"w": i}, "vector": [round(rng.uniform(-1, 1), 4)
                                                                                 for _ in range(64)]}
                                      for i in range(100)], "next_page_offset": 100},
                "status": "ok", "time": 0.001}
    expected = json.dumps(response, allow_nan=False).encode()
    monkeypatch.setattr(jsonwire.json, "dumps", lambda *args, **kwargs: pytest.fail("the slow way"))
    assert jsonwire.json_dumps(response) == expected


@dataclasses.dataclass
class Point:
    x: int


class Name(str):
    pass


def test_dumps_leaves_to_json_what_is_not_a_plain_json_value() -> None:
    odd = {"path": Path("/tmp/x"), "when": datetime.datetime(2026, 1, 1), "point": Point(1), "name": Name("n"),
           "set": {1}, "bytes": b"x", "big": 2**70, 3: "int key", "nested": [{"at": datetime.date(2026, 1, 2)}]}
    for key, item in odd.items():
        value = {key: item} if isinstance(key, str) else odd
        assert jsonwire.std_dumps(value, default=str) == json.dumps(value, separators=(",", ":"), default=str)
    with pytest.raises(TypeError):
        jsonwire.std_dumps({"x": {1}})


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "1e400", "-1e999", '"\\ud800"', '"\\udc00x"', "\ufeff1",
                                  "18446744073709551616", "-9999999999999999999", "9" * 40, "[1,]", "", "01",
                                  '{"a":1,"a":2}', "[" * 50 + "]" * 50, '"\\u00e9\\ud83d\\ude00"'])
def test_loads_accepts_and_refuses_what_json_does(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            expected: Any = ("value", json.loads(data))
        except ValueError as error:
            expected = ("error", type(error))
        try:
            got: Any = ("value", jsonwire.std_loads(data))
        except ValueError as error:
            got = ("error", type(error))
        assert repr(got) == repr(expected)
