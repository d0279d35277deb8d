"""Qdrant's response envelope and request parsing helpers, shared by every route of the node.

Success: 200 `{"result": X, "status": "ok", "time": t}`; background work (`wait=false`): 202
`{"status": "accepted", "time": t}`; errors: `{"status": {"error": "..."}, "time": t}` (the middleware in
node/api/app.py). Parse errors use Qdrant's words: `Format error in JSON body: ...`, `Deserialize error in
query parameters: ...`, `Validation error in ...`.

Every body is read and written by node/jsonwire.py: parsed as serde_json parses (no `NaN`, no `Infinity`,
no number out of range, 128 levels deep at most, serde's message with its line and column), encoded refusing
non-finite floats (a bug then shows as a 500 in the envelope, never as invalid JSON). A JSON body is read
whatever its content type, as Qdrant's validating `Json` extractor does (actix-web-validator 7 builds actix's
`JsonBody` with `ctype_required = false`), up to `max_request_bytes` (Qdrant's `max_request_size_mb`, 32 MiB;
past it 400 with actix's `JsonPayloadError` text, since Qdrant's JSON error handler answers every
non-deserialize payload error with 400 and `err.to_string()`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node import clock
from node.apikey import header_text
from node.errors import FormatError, UnsupportedMediaType
from node.jsonwire import JsonSyntaxError, json_loads, json_text

REQUEST_START = web.RequestKey("request_start", float)  # clock.monotonic() when the request came in
JSON_BYTES_MAX = web.AppKey("json_bytes_max", int)  # set by the app builder from `max_request_bytes`
JSON_BYTES_MAX_DEFAULT = 32 << 20  # Qdrant's service.max_request_size_mb: 32


def elapsed(request: web.Request) -> float:
    start = request.get(REQUEST_START)
    return round(clock.monotonic() - start, 6) if start is not None else 0.0


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response encoded by `json_text`: ValueError (so a 500 in the envelope) for NaN or infinity."""
    return web.json_response(data, status=status, headers=headers, dumps=json_text)


def ok(request: web.Request, result: Any, status: int = 200) -> web.Response:
    return json_response({"result": result, "status": "ok", "time": elapsed(request)}, status=status)


def accepted(request: web.Request) -> web.Response:
    return json_response({"status": "accepted", "time": elapsed(request)}, status=202)


def error_body(message: str, time_s: float) -> dict[str, Any]:
    return {"status": {"error": message}, "time": time_s}


async def body_read(request: web.Request, limit: int) -> bytes:
    """The whole body, refused past `limit` bytes in actix-web's words (before reading, when the length is
    announced)."""
    length = request.content_length
    if length is not None and length > limit:
        raise FormatError(f"JSON payload ({length} bytes) is larger than allowed (limit: {limit} bytes).")
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise FormatError(f"JSON payload has exceeded limit ({limit} bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_value(request: web.Request, default: Any = None, required: bool = True) -> Any:
    """The body's JSON value, parsed as serde_json does (400 `Format error in JSON body: ...`); an empty body
    is `default` when not `required`."""
    raw = await body_read(request, request.app.get(JSON_BYTES_MAX, JSON_BYTES_MAX_DEFAULT))
    if not required and not raw.strip():
        return default
    try:
        return json_loads(raw)
    except JsonSyntaxError as error:
        raise FormatError(f"Format error in JSON body: {error}") from None


async def json_body(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The body's JSON object; an empty body is `{}` when not `required`."""
    value = await json_value(request, {}, required)
    if not isinstance(value, dict):
        raise FormatError("Format error in JSON body: expected a JSON object")
    return value


def multipart_check(request: web.Request) -> None:
    """An upload's headers, checked before anything is read as actix-multipart 0.8's `MultipartForm` checks them
    (`Multipart::find_ct_and_boundary`, then the `form-data` subtype), with its messages and statuses."""
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        raise FormatError("Could not find Content-Type header")
    text = header_text(content_type)
    media_type, _, parameters = (text or "").partition(";")
    kind, slash, subtype = media_type.strip().lower().partition("/")
    if text is None or not slash or not kind or not subtype:
        raise FormatError("Could not parse Content-Type header")
    if kind != "multipart":
        raise UnsupportedMediaType("Parsed Content-Type did not have 'multipart' top-level media type")
    boundary = next((value.strip().strip('"') for name, _, value in
                     (item.partition("=") for item in parameters.split(";")) if name.strip().lower() == "boundary"),
                    "")
    if not boundary:
        raise FormatError("Multipart boundary is not found")
    if subtype != "form-data":
        raise UnsupportedMediaType("Parsed Content-Type did not have 'multipart' top-level media type")


def serde_kind(value: Any) -> str:
    """How serde names a JSON value of the wrong type ("invalid type: integer `123`, expected ...")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def body_string(body: dict[str, Any], name: str) -> str:
    """A required string field of a JSON body, with serde's messages when it is missing or not a string."""
    if name not in body:
        raise FormatError(f"Format error in JSON body: missing field `{name}`")
    value = body[name]
    if not isinstance(value, str):
        raise FormatError(f"Format error in JSON body: invalid type: {serde_kind(value)}, expected a string")
    return value


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise FormatError(f"Deserialize error in query parameters: {name}: provided string was not `true` or "
                      f"`false`")


def query_float(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise FormatError(f"Deserialize error in query parameters: {name}: invalid number") from None


def path_int(request: web.Request, name: str) -> int:
    value = request.match_info[name]
    if not value.isdigit():
        raise FormatError(f"Deserialize error in path parameters: {name}: invalid digit found in string")
    return int(value)
