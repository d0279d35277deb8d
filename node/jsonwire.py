"""JSON on the wire as Qdrant's serde_json reads and writes it: strict parsing with serde's own error messages,
and encoding that refuses anything that is not JSON.

Python's `json` accepts the tokens `NaN`, `Infinity` and `-Infinity`, turns `1e400` into infinity, nests as
deep as the interpreter's stack allows (then RecursionError), decodes a byte-order mark and lone UTF-16
surrogates, and writes non-finite floats as bare `NaN`. serde_json (what actix-web's `Json` extractor uses in
Qdrant) refuses each of these with a syntax error naming the line and column, and nests 128 levels at most.

    json_loads(raw)  -> the value, or JsonSyntaxError("expected value at line 1 column 2")
    json_dumps(value) -> json.dumps's bytes; ValueError for a NaN or an infinity (a bug to see, never invalid
                         JSON sent); through orjson when the bytes are the same (`std_dumps` below)

`json_loads` parses with orjson first (fastest; it refuses NaN, infinities, overflowing numbers, a byte-order
mark and lone surrogates as serde does, and a body with 19 digits in a row skips it: orjson reads such an
integer as a float), then with Python's C parser, with hooks that refuse what serde refuses; whenever that
fails, or the body nests deeper than serde allows, or holds an unpaired surrogate escape, `serde_error`
walks the bytes the way serde_json's `from_slice` does (iteratively) to find serde's first error and its
position. Pure: no I/O, so `cluster/` (the coordinator) parses its bodies the same way (tests/test_layout.py).
Source facts (serde_json 1.0.15x, `src/de.rs`, `src/read.rs`, `src/error.rs`): errors print as
`<reason> at line L column C`, the column counting bytes from the line's start; an error at a byte that was
only peeked is reported one byte further on than one at a consumed byte; `remaining_depth` starts at 128.

The standard library's JSON, faster (what shardsim's own files and clients read and write, not serde's):

    std_loads(data)                -> json.loads(data)
    std_dumps(value, default=None) -> json.dumps(value, separators=(",", ":"), default=default)

Vector-bearing bodies and history records are thousands of floats, which `json` prints and parses one
Python object at a time and orjson (Rust) 6 to 16 times faster. The answers are `json`'s, not orjson's:

- `std_loads` takes orjson's value only when orjson accepts the text and the text holds no run of 19
  digits (an integer that may lie outside 64 bits, which orjson reads as a float and `json` as an int);
  whatever orjson refuses (NaN, a byte-order mark, a lone surrogate, an overflowing exponent...) is read
  by `json`, which accepts or refuses it as it always did. Floats are correctly rounded by both.
- `std_dumps` takes orjson's bytes only when they are the bytes `json` writes: orjson refuses (and `json`
  writes) what is not a plain JSON value (a subclass of str, int, dict or list, a dataclass, a datetime, a
  non-string key, an integer beyond 64 bits, anything `default` converts); the output is ASCII without
  DEL (`json` escapes the others as `\\uXXXX`, orjson writes UTF-8); and no number is written with an
  exponent or as `0.0000...` (where `repr` writes `1e-05`, `1.5e+16`, orjson may write `0.00001`,
  `1.5e16`; text that merely looks so, a digit then `e`, or `0.0000`, just takes the slow path). Two
  differences are left, for values no shardsim record holds: a non-finite float is `null` (json: `NaN`,
  which is not JSON) and a member of a plain `enum.Enum` is its value (json, `default=str`: `Class.NAME`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

RECURSION_LIMIT = 128  # serde_json's remaining_depth: the 128th nested array or object is refused
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
EXPONENT_MAX = (1 << 31) - 1  # serde keeps the exponent in an i32
WHITESPACE = b" \t\n\r"
DIGITS = b"0123456789"
HEX = b"0123456789abcdefABCDEF"
SIMPLE_ESCAPES = b'"\\/bfnrt'
STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
EXPONENT_LONG = re.compile(rb"[eE][+-]?[0-9]{3}")  # with 20 digits in a row, the only numbers that can
DIGIT_RUN = b"0" * 20                             # overflow a float or a u64
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
LONG_DIGITS = 19  # fewer digits always fit in an i64 or a u64, which orjson reads as int, as json does
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * LONG_DIGITS
_PLAIN_ONLY = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class JsonSyntaxError(ValueError):
    """A body serde_json would refuse, in its words: `reason at line L column C`."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"{reason} at line {line} column {column}")
        self.reason, self.line, self.column = reason, line, column


class _Refused(ValueError):
    """Raised from the fast parser's hooks: let `serde_error` find serde's words."""


def _constant_refuse(name: str) -> Any:
    raise _Refused(name)


def _float_checked(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(text)
    return value


def _int_checked(text: str) -> int | float:
    """serde keeps an integer as u64 or i64; beyond those it reads it as an f64 (no arbitrary precision)."""
    if len(text) <= 20:
        value = int(text)
        if I64_MIN <= value <= U64_MAX:
            return value
    return _float_checked(text)


def json_loads(raw: bytes) -> Any:
    """The value of a JSON body, accepted and refused exactly where serde_json would (see the module doc)."""
    if not long_digit_run(raw):  # orjson reads a long integer as a float; the path below reads it as serde does
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the path below finds serde's verdict and words
        else:  # orjson refuses NaN, infinities, overflow, a BOM, lone surrogates: only depth is left to check
            if nesting_depth(raw) >= RECURSION_LIMIT:
                found = serde_error(raw)
                if found is not None:
                    raise found
            return value
    try:
        text = raw.decode("utf-8")
        if long_number(raw):  # a number that may overflow or exceed u64: read each one as serde does
            value = json.loads(text, parse_constant=_constant_refuse, parse_float=_float_checked,
                               parse_int=_int_checked)
        else:
            value = json.loads(text, parse_constant=_constant_refuse)
    except (ValueError, RecursionError) as error:
        raise serde_error(raw) or JsonSyntaxError(f"invalid JSON ({error})", 1, 0) from None
    if nesting_depth(raw) >= RECURSION_LIMIT or (b"\\u" in raw and SURROGATE_ESCAPE.search(raw)
                                                 and not utf8_encodable(value)):
        found = serde_error(raw)
        if found is not None:
            raise found
    return value


def long_number(raw: bytes) -> bool:
    """Whether the body may hold a number of 20 digits or more, or an exponent of 3 digits or more. Scans in C
    (a regex over every digit of a body of vectors cost more than parsing it)."""
    if (b"e" in raw or b"E" in raw) and EXPONENT_LONG.search(raw):
        return True
    return DIGIT_RUN in raw.translate(DIGITS_AS_ZERO)


def json_dumps(value: Any) -> bytes:
    """JSON bytes as `json.dumps` writes them (`", "` and `": "` between items); a non-finite float is a
    ValueError (serde would write `null`, Python `NaN`: either would hide a bug, so shardsim says it loudly
    instead). Written by orjson when that gives the same bytes: `std_dumps`'s conditions, no `null` (orjson's
    NaN), and no string holding a backslash, `,` or `:`, so that the separators widen by plain replacing."""
    data = _orjson_as_json(value)
    if data is not None and b"null" not in data and b"\\" not in data:
        inside = b"".join(data.split(b'"')[1::2])  # the strings' contents: with no backslash, quotes pair up
        if b"," not in inside and b":" not in inside:
            return data.replace(b",", b", ").replace(b":", b": ")
    return json.dumps(value, allow_nan=False).encode()


def json_text(value: Any) -> str:
    """`json_dumps` as text, for aiohttp's `json_response(dumps=...)`."""
    return json_dumps(value).decode()


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a body that parsed (strings removed first, so brackets inside
    them do not count); cheap when the body holds few brackets."""
    if raw.count(b"[") + raw.count(b"{") < RECURSION_LIMIT:
        return 0
    brackets = STRING.sub(b"", raw).translate(None, NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def utf8_encodable(value: Any) -> bool:
    """False when a string (or key) holds a lone surrogate, which only an escape like `\\ud800` can make."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- serde_json's parser, to find its first error -------------------------------------------------------

class _Scan:
    """A cursor over the body, with serde's two ways of placing an error (`error`, `peek_error`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0

    def peek(self) -> int | None:
        return self.data[self.index] if self.index < len(self.data) else None

    def next(self) -> int | None:
        found = self.peek()
        if found is not None:
            self.index += 1
        return found

    def whitespace(self) -> int | None:
        while (found := self.peek()) is not None and found in WHITESPACE:
            self.index += 1
        return found

    def at(self, index: int, reason: str) -> JsonSyntaxError:
        start = self.data.rfind(b"\n", 0, index) + 1
        return JsonSyntaxError(reason, 1 + self.data.count(b"\n", 0, start), index - start)

    def error(self, reason: str) -> JsonSyntaxError:
        """At a byte already consumed (serde's `error`)."""
        return self.at(self.index, reason)

    def peek_error(self, reason: str) -> JsonSyntaxError:
        """At a byte only looked at (serde's `peek_error`): one further on."""
        return self.at(min(len(self.data), self.index + 1), reason)


def serde_error(raw: bytes) -> JsonSyntaxError | None:
    """serde_json's first error in `raw` read as one JSON value (None: serde would accept it)."""
    scan = _Scan(raw)
    try:
        _value(scan)
        if scan.whitespace() is not None:
            raise scan.peek_error("trailing characters")
    except JsonSyntaxError as error:
        return error
    return None


def _value(scan: _Scan) -> None:
    """One value, nested ones included, with an explicit stack of open containers (no recursion)."""
    stack: list[int] = []  # b"[" or b"{" per open container
    while True:
        found = scan.whitespace()
        if found is None:
            raise scan.peek_error("EOF while parsing a value")
        if found in b"[{":
            if len(stack) + 1 >= RECURSION_LIMIT:
                raise scan.peek_error("recursion limit exceeded")
            scan.index += 1
            stack.append(found)
            if _container_first(scan, found):
                continue  # its first element (an object's: after the key and colon) is a value to read
            stack.pop()  # empty: a complete value
        else:
            _scalar(scan, found)
        while stack:  # a value is complete: close containers until one has another element
            if _container_next(scan, stack):
                break
        else:
            return


def _container_first(scan: _Scan, kind: int) -> bool:
    """Right after `[` or `{`: False if it closes at once; for an object, reads the first key and colon."""
    found = scan.whitespace()
    if kind == ord("["):
        if found is None:
            raise scan.peek_error("EOF while parsing a list")
        if found == ord("]"):
            scan.index += 1
            return False
        return True
    if found is None:
        raise scan.peek_error("EOF while parsing an object")
    if found == ord("}"):
        scan.index += 1
        return False
    if found != ord('"'):
        raise scan.peek_error("key must be a string")
    _key_and_colon(scan)
    return True


def _container_next(scan: _Scan, stack: list[int]) -> bool:
    """After an element of the innermost container: True if another element follows (its key and colon read,
    for an object), False if the container closed (popped)."""
    kind = stack[-1]
    found = scan.whitespace()
    if kind == ord("["):
        if found is None:
            raise scan.peek_error("EOF while parsing a list")
        if found == ord("]"):
            scan.index += 1
            stack.pop()
            return False
        if found != ord(","):
            raise scan.peek_error("expected `,` or `]`")
        scan.index += 1
        after = scan.whitespace()
        if after == ord("]"):
            raise scan.peek_error("trailing comma")
        if after is None:
            raise scan.peek_error("EOF while parsing a value")
        return True
    if found is None:
        raise scan.peek_error("EOF while parsing an object")
    if found == ord("}"):
        scan.index += 1
        stack.pop()
        return False
    if found != ord(","):
        raise scan.peek_error("expected `,` or `}`")
    scan.index += 1
    after = scan.whitespace()
    if after == ord('"'):
        _key_and_colon(scan)
        return True
    if after == ord("}"):
        raise scan.peek_error("trailing comma")
    if after is None:
        raise scan.peek_error("EOF while parsing a value")
    raise scan.peek_error("key must be a string")


def _key_and_colon(scan: _Scan) -> None:
    scan.index += 1  # the opening quote
    _string_rest(scan)
    found = scan.whitespace()
    if found is None:
        raise scan.peek_error("EOF while parsing an object")
    if found != ord(":"):
        raise scan.peek_error("expected `:`")
    scan.index += 1


def _scalar(scan: _Scan, found: int) -> None:
    literals = {ord("n"): b"ull", ord("t"): b"rue", ord("f"): b"alse"}
    if found in literals:
        scan.index += 1
        for expected in literals[found]:
            got = scan.next()
            if got is None:
                raise scan.error("EOF while parsing a value")
            if got != expected:
                raise scan.error("expected ident")
    elif found == ord("-"):
        scan.index += 1
        _number(scan)
    elif found in DIGITS:
        _number(scan)
    elif found == ord('"'):
        scan.index += 1
        _string_rest(scan)
    else:
        raise scan.peek_error("expected value")


def _digits(scan: _Scan) -> None:
    while (found := scan.peek()) is not None and found in DIGITS:
        scan.index += 1


def _number(scan: _Scan) -> None:
    """serde's parse_integer, parse_decimal and parse_exponent (the sign, if any, already consumed)."""
    start = scan.index
    first = scan.next()
    if first is None:
        raise scan.error("EOF while parsing a value")
    if first == ord("0"):
        if (found := scan.peek()) is not None and found in DIGITS:
            raise scan.peek_error("invalid number")
    elif first in DIGITS:
        _digits(scan)
    else:
        raise scan.error("invalid number")
    if scan.peek() == ord("."):
        scan.index += 1
        fraction_start = scan.index
        _digits(scan)
        if scan.index == fraction_start:
            raise scan.peek_error("invalid number" if scan.peek() is not None else "EOF while parsing a value")
    mantissa_zero = not scan.data[start:scan.index].strip(b"0.")
    if scan.peek() in (ord("e"), ord("E")):
        scan.index += 1
        positive = True
        if scan.peek() in (ord("+"), ord("-")):
            positive = scan.data[scan.index] == ord("+")
            scan.index += 1
        digit = scan.next()
        if digit is None:
            raise scan.error("EOF while parsing a value")
        if digit not in DIGITS:
            raise scan.error("invalid number")
        exponent = digit - ord("0")
        while (found := scan.peek()) is not None and found in DIGITS:
            scan.index += 1
            exponent = exponent * 10 + found - ord("0")
            if exponent > EXPONENT_MAX:
                if positive and not mantissa_zero:
                    raise scan.error("number out of range")
                _digits(scan)
                return
    literal = scan.data[start:scan.index]
    if (b"." in literal or b"e" in literal.lower() or len(literal) > 19) and math.isinf(float(literal)):
        raise scan.error("number out of range")


def _string_rest(scan: _Scan) -> None:
    """A string after its opening quote: escapes, control characters, then UTF-8 (checked at the end)."""
    start = scan.index
    data = scan.data
    while True:
        found = scan.next()
        if found is None:
            raise scan.error("EOF while parsing a string")
        if found == ord('"'):
            try:
                data[start:scan.index - 1].decode("utf-8")
            except UnicodeDecodeError:
                raise scan.error("invalid unicode code point") from None
            return
        if found == ord("\\"):
            _escape(scan)
        elif found < 0x20:
            raise scan.error("control character (\\u0000-\\u001F) found while parsing a string")


def _escape(scan: _Scan) -> None:
    found = scan.next()
    if found is None:
        raise scan.error("EOF while parsing a string")
    if found == ord("u"):
        _unicode_escape(scan)
    elif found not in SIMPLE_ESCAPES:
        raise scan.error("invalid escape")


def _hex4(scan: _Scan) -> int:
    digits = scan.data[scan.index:scan.index + 4]
    if len(digits) < 4:
        scan.index = len(scan.data)
        raise scan.error("EOF while parsing a string")
    scan.index += 4
    if any(d not in HEX for d in digits):
        raise scan.error("invalid escape")
    return int(digits, 16)


def _unicode_escape(scan: _Scan) -> None:
    """`\\uXXXX`: a surrogate must be a leading one followed by `\\u` and a trailing one."""
    code = _hex4(scan)
    if 0xDC00 <= code <= 0xDFFF:
        raise scan.error("lone leading surrogate in hex escape")
    if not 0xD800 <= code <= 0xDBFF:
        return
    for expected in b"\\u":
        found = scan.peek()
        if found is None:
            raise scan.error("EOF while parsing a string")
        scan.index += 1
        if found != expected:
            raise scan.error("unexpected end of hex escape")
    if not 0xDC00 <= _hex4(scan) <= 0xDFFF:
        raise scan.error("lone leading surrogate in hex escape")


# --- the standard library's JSON, faster ------------------------------------------------------------

def _refuse(value: Any) -> Any:
    raise TypeError  # not a plain JSON value: `json` writes it (with the caller's `default`)


def long_digit_run(data: bytes) -> bool:
    """Whether `data` holds `LONG_DIGITS` or more digits in a row."""
    return _LONG_RUN in data.translate(_DIGITS_TO_ZERO)


def std_loads(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`, read by orjson when that gives the same value (see the module doc)."""
    try:
        raw = data.encode() if isinstance(data, str) else data if isinstance(data, bytes) else bytes(data)
    except UnicodeEncodeError:  # a lone surrogate in a str: json's business
        return json.loads(data)
    if not long_digit_run(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def std_dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """`json.dumps(value, separators=(",", ":"), default=default)`, written by orjson when the bytes are the
    same (see the module doc)."""
    data = _orjson_as_json(value)
    if data is not None:
        return data.decode("ascii")
    return json.dumps(value, separators=(",", ":"), default=default)


def _orjson_as_json(value: Any) -> bytes | None:
    """orjson's bytes for `value` when they are `json.dumps(value, separators=(",", ":"))`'s, a non-finite
    float aside (orjson: `null`); else None (see the module doc)."""
    try:
        data = orjson.dumps(value, default=_refuse, option=_PLAIN_ONLY)
    except TypeError:
        return None
    if data.isascii() and b"\x7f" not in data and b"0.0000" not in data \
            and b"0e" not in data.translate(_DIGITS_TO_ZERO):
        return data
    return None
