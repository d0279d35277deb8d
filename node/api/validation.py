"""Validation errors as Qdrant writes them: 422 `Validation error in <where>: [field: message; ...]`.

Qdrant validates a request in two steps. Deserialization (a wrong type, a negative number for an unsigned
field, an unknown enum variant) fails with 400 `Format error in JSON body: ...` or `Deserialize error in
query parameters: ...`; only a request that deserializes is then checked by the `validator` crate's rules
(ranges, lengths, custom checks), and those failures are 422, with `time: 0.0`. The message lists every
failing field as `field: message`, joined by `; `, with nested fields as `a.b` and list items as `a[0].b`.

A message is the rule's own text when it has one; else it is built from the rule's code: `range` gives
`value 0 invalid, must be 1 or larger` (or `must be from 1 to 65536`, `must be 10 or smaller`), `length`
gives `value "x" invalid, must be from 1 to 255 characters`; a code without a text is printed by the
validator crate as `Validation error: <code> [<params>]`, e.g. `invalid_sha256_hash` for a checksum of the
wrong length. Values are printed as serde_json prints them.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from node.api.responses import serde_kind
from node.errors import FormatError, ValidationError, rust_debug

SHA256_LENGTH = 64
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
COLLECTION_NAME_MAX = 255
COLLECTION_NAME_FORBIDDEN = ("<", ">", ":", '"', "/", "\\", "|", "?", "*", "\0", "\x1f")  # new collections
COLLECTION_NAME_FORBIDDEN_LEGACY = ("/", "\0")  # any other route naming a collection
COLLECTION_NAME_UNSAFE = ("#", "%")  # shardsim's own: its cluster traffic puts names in URLs unquoted


class Violation(NamedTuple):
    field: str
    message: str


def validation_error(where: str, violations: list[Violation]) -> ValidationError:
    """The 422 for these violations; `where` is `path parameters`, `query parameters` or `JSON body`."""
    listed = "; ".join(f"{violation.field}: {violation.message}" for violation in violations)
    return ValidationError(f"Validation error in {where}: [{listed}]")


def raise_if_any(where: str, violations: list[Violation]) -> None:
    if violations:
        raise validation_error(where, violations)


def json_display(value: Any) -> str:
    """serde_json's Display of a value: compact JSON, floats always with a fraction or exponent."""
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        return text.replace("e+", "e") if "e" in text else text
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_debug(value: Any) -> str:
    """serde_json's `{:?}` of a value (`Number(3)`, `String("abc")`), as the validator crate prints params."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return f"Bool({str(value).lower()})"
    if isinstance(value, int | float):
        return f"Number({json_display(value)})"
    if isinstance(value, str):
        return f"String({rust_debug(value)})"
    if isinstance(value, list):
        return "Array [" + ", ".join(json_debug(item) for item in value) + "]"
    items = ", ".join(f"{rust_debug(str(key))}: {json_debug(item)}" for key, item in value.items())
    return "Object {" + items + "}"


def coded(code: str, params: dict[str, Any]) -> str:
    """How the validator crate prints an error that has a code and parameters but no message."""
    listed = ", ".join(f"{rust_debug(name)}: {json_debug(value)}" for name, value in params.items())
    return f"Validation error: {code} [{{{listed}}}]"


def range_violation(field: str, value: Any, minimum: Any = None, maximum: Any = None) -> Violation | None:
    """Qdrant's `range(min, max)` rule; None when `value` (a number, or None: not given) is inside."""
    if value is None:
        return None
    if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return None
    if maximum is None:
        bound = f"must be {json_display(minimum)} or larger"
    elif minimum is None:
        bound = f"must be {json_display(maximum)} or smaller"
    else:
        bound = f"must be from {json_display(minimum)} to {json_display(maximum)}"
    return Violation(field, f"value {json_display(value)} invalid, {bound}")


def length_violation(field: str, value: str, minimum: int, maximum: int) -> Violation | None:
    """Qdrant's `length(min, max)` rule on a string (counted in characters)."""
    if minimum <= len(value) <= maximum:
        return None
    return Violation(field, f"value {json_display(value)} invalid, must be from {minimum} to {maximum} "
                            f"characters")


def sha256_violation(field: str, value: str) -> Violation | None:
    """Qdrant's checksum rule: exactly 64 hexadecimal digits, either case, nothing around them."""
    if len(value.encode()) != SHA256_LENGTH:
        params = {"length": len(value.encode()), "expected_length": SHA256_LENGTH, "value": value}
        return Violation(field, coded("invalid_sha256_hash", params))
    if not all(char in HEX_DIGITS for char in value):
        return Violation(field, "invalid characters, expected 0-9, a-f, A-F")
    return None


def checksum_param(value: Any, where: str) -> str | None:
    """An optional `checksum` (JSON body or query); returned as given, compared ignoring case later."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FormatError(f"{deserialize_prefix(where)}: invalid type: {serde_kind(value)}, expected a string")
    raise_if_any(where, [v for v in [sha256_violation("checksum", value)] if v])
    return value


def deserialize_prefix(where: str) -> str:
    return "Format error in JSON body" if where == "JSON body" else f"Deserialize error in {where}"


def collection_name_violations(name: str, strict: bool) -> list[Violation]:
    """The path's `collection_name` rules: 1 to 255 characters, and no character that cannot be a file name
    (`strict`, for a new collection: `< > : " / \\ | ? *`, NUL and 0x1F, and shardsim also refuses `#` and
    `%`; else only `/` and NUL)."""
    violations = [v for v in [length_violation("collection_name", name, 1, COLLECTION_NAME_MAX)] if v]
    forbidden = COLLECTION_NAME_FORBIDDEN + COLLECTION_NAME_UNSAFE if strict else COLLECTION_NAME_FORBIDDEN_LEGACY
    char = next((c for c in forbidden if c in name), None)
    if char is not None:
        violations.append(Violation("collection_name", f'collection name cannot contain "{char}" char'))
    elif name in (".", ".."):  # shardsim's own rule: a name is a folder name
        violations.append(Violation("collection_name", f'collection name cannot be "{name}"'))
    return violations


def unsigned(value: Any, where: str = "JSON body", kind: str = "u32") -> int | None:
    """An optional unsigned integer as serde reads it: 400 for a wrong type or a negative number (serde's
    words; Qdrant's also end with the line and column, which shardsim does not track)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{deserialize_prefix(where)}: invalid type: {serde_kind(value)}, expected {kind}")
    if value < 0:
        raise FormatError(f"{deserialize_prefix(where)}: invalid value: integer `{value}`, expected {kind}")
    return value


def number(value: Any, where: str = "JSON body") -> float | None:
    """An optional f64 as serde reads it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{deserialize_prefix(where)}: invalid type: {serde_kind(value)}, expected f64")
    return value


def query_unsigned(query: Any, name: str) -> int | None:
    """An optional unsigned integer query parameter, as serde_urlencoded reads it."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw == "":
        raise FormatError("Deserialize error in query parameters: cannot parse integer from empty string")
    if not (raw.isascii() and raw.isdigit()):
        raise FormatError("Deserialize error in query parameters: invalid digit found in string")
    return int(raw)


def timeout_violations(query: Any) -> list[Violation]:
    """`?timeout=` of the collection routes: whole seconds, at least 1."""
    return [v for v in [range_violation("timeout", query_unsigned(query, "timeout"), 1)] if v]


# --- collection bodies (Qdrant's CreateCollection / UpdateCollection rules) ------------------------------

VECTOR_SIZE_MAX = 65536
HNSW_RANGES = {"ef_construct": 4, "full_scan_threshold": 10}  # field: minimum
OPTIMIZER_RANGES = {"deleted_threshold": (0.0, 1.0), "vacuum_min_vector_number": (100, None),
                    "max_segment_size": (1, None)}


def nested(prefix: str, violations: list[Violation]) -> list[Violation]:
    return [Violation(f"{prefix}.{v.field}", v.message) for v in violations]


def struct(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: invalid type: {serde_kind(value)}, expected struct {name}")
    return value


def hnsw_violations(value: Any) -> list[Violation]:
    config = struct(value, "HnswConfigDiff")
    if config is None:
        return []
    found = (range_violation(field, unsigned(config.get(field), kind="usize"), minimum)
             for field, minimum in HNSW_RANGES.items())
    return [v for v in found if v]


def wal_violations(value: Any) -> list[Violation]:
    config = struct(value, "WalConfigDiff")
    if config is None:
        return []
    found = range_violation("wal_capacity_mb", unsigned(config.get("wal_capacity_mb"), kind="usize"), 1)
    return [found] if found else []


def optimizers_violations(value: Any) -> list[Violation]:
    config = struct(value, "OptimizersConfigDiff")
    if config is None:
        return []
    found = []
    for field, (minimum, maximum) in OPTIMIZER_RANGES.items():
        given = number(config.get(field)) if isinstance(minimum, float) else unsigned(config.get(field),
                                                                                       kind="usize")
        found.append(range_violation(field, given, minimum, maximum))
    return [v for v in found if v]


def vector_params_violations(params: dict[str, Any]) -> list[Violation]:
    """One dense vector's params: `size` 1 to 65536 (0 or a non-integer does not even deserialize)."""
    size = params.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise FormatError("Format error in JSON body: data did not match any variant of untagged enum "
                          "VectorsConfig")
    found = [v for v in [range_violation("size", size, 1, VECTOR_SIZE_MAX)] if v]
    return found + nested("hnsw_config", hnsw_violations(params.get("hnsw_config")))


def vectors_violations(vectors: Any) -> list[Violation]:
    """`vectors`: one unnamed config, or a map of named ones (each failing one listed under `?`)."""
    if not isinstance(vectors, dict):
        return []  # refused by the config check with its own words
    if "size" in vectors:
        return vector_params_violations(vectors)
    failing = [found for _, params in sorted(vectors.items())
               if isinstance(params, dict) and (found := vector_params_violations(params))]
    if len(failing) == 1:
        return nested("?", failing[0])
    return [v for index, found in enumerate(failing) for v in nested(f"?[{index}]", found)]


def collection_create_violations(body: dict[str, Any]) -> list[Violation]:
    """The 422s of a create-collection body; raises the 400 of a field that does not deserialize."""
    found = nested("vectors", vectors_violations(body.get("vectors")))
    for field in ("shard_number", "replication_factor", "write_consistency_factor"):
        violation = range_violation(field, unsigned(body.get(field)), 1)
        if violation:
            found.append(violation)
    found += nested("hnsw_config", hnsw_violations(body.get("hnsw_config")))
    found += nested("wal_config", wal_violations(body.get("wal_config")))
    optimizers = body.get("optimizers_config", body.get("optimizer_config"))
    found += nested("optimizers_config", optimizers_violations(optimizers))
    return found


def collection_update_violations(body: dict[str, Any]) -> list[Violation]:
    """The 422s of an update-collection body (the parts shardsim reads: HNSW and optimizer settings)."""
    found = nested("hnsw_config", hnsw_violations(body.get("hnsw_config")))
    optimizers = body.get("optimizers_config", body.get("optimizer_config"))
    return found + nested("optimizers_config", optimizers_violations(optimizers))
