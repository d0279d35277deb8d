"""Toxic specifications: the types, their attributes, and how API bodies become toxics.

Part of `cluster.proxy`, pure (no I/O). A `Toxic` is what the API shows and stores, shared by every open
connection of its proxy; what a toxic *does* to bytes lives in `stages.py`. Validation follows the real
Toxiproxy: a bad body, an unknown stream or type is a 400; unknown attributes are ignored; attributes not
given are 0; an update may change only `attributes` (partially) and `toxicity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cluster.proxy import errors

STREAMS = ("upstream", "downstream")

ATTRIBUTE_DEFAULTS: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@dataclass
class Toxic:
    """One toxic of one proxy, as the API shows it."""

    name: str
    type: str
    stream: str
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _body_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.BAD_REQUEST_BODY.joined("expected a JSON object")
    return body


def _string_field(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise errors.BAD_REQUEST_BODY.joined(f"field {key!r} must be a string")
    return value


def _toxicity_field(body: dict[str, Any], default: float) -> float:
    value = body.get("toxicity", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.BAD_REQUEST_BODY.joined("field 'toxicity' must be a number")
    return float(value)


def _attributes_merged(toxic_type: str, current: dict[str, int], given: object) -> dict[str, int]:
    """`current` with the known attributes of `given` replaced; integers only, as the Go server."""
    if given is None:
        return dict(current)
    if not isinstance(given, dict):
        raise errors.BAD_REQUEST_BODY.joined("field 'attributes' must be an object")
    merged = dict(current)
    for key in ATTRIBUTE_DEFAULTS[toxic_type]:
        if key not in given or given[key] is None:
            continue
        value = given[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.BAD_REQUEST_BODY.joined(f"attribute {key!r} must be an integer")
        merged[key] = value
    return merged


def toxic_from_json(body: object) -> Toxic:
    """A new toxic from a `POST /proxies/{p}/toxics` body; raises `ApiError` (400) when invalid."""
    fields = _body_object(body)
    stream = _string_field(fields, "stream", "downstream").lower()
    if stream not in STREAMS:
        raise errors.INVALID_STREAM
    toxic_type = _string_field(fields, "type", "")
    name = _string_field(fields, "name", "") or f"{toxic_type}_{stream}"
    if toxic_type not in ATTRIBUTE_DEFAULTS:
        raise errors.INVALID_TOXIC_TYPE
    toxicity = _toxicity_field(fields, 1.0)
    attributes = _attributes_merged(toxic_type, ATTRIBUTE_DEFAULTS[toxic_type], fields.get("attributes"))
    return Toxic(name=name, type=toxic_type, stream=stream, toxicity=toxicity, attributes=attributes)


def toxic_updated(toxic: Toxic, body: object) -> Toxic:
    """The toxic after a `PATCH` body: only attributes (partially) and toxicity change."""
    fields = _body_object(body)
    return Toxic(
        name=toxic.name,
        type=toxic.type,
        stream=toxic.stream,
        toxicity=_toxicity_field(fields, toxic.toxicity),
        attributes=_attributes_merged(toxic.type, toxic.attributes, fields.get("attributes")),
    )
