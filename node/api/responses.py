"""Qdrant's response envelope and request parsing helpers, shared by every route of the node.

Success: 200 `{"result": X, "status": "ok", "time": t}`; background work (`wait=false`): 202
`{"status": "accepted", "time": t}`; errors: `{"status": {"error": "..."}, "time": t}` (the middleware in
node/api/app.py). Parse errors use Qdrant's words: `Format error in JSON body: ...`, `Deserialize error in
query parameters: ...`, `Validation error in ...`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node import clock
from node.errors import FormatError

REQUEST_START = web.RequestKey("request_start", float)  # clock.monotonic() when the request came in


def elapsed(request: web.Request) -> float:
    start = request.get(REQUEST_START)
    return round(clock.monotonic() - start, 6) if start is not None else 0.0


def ok(request: web.Request, result: Any, status: int = 200) -> web.Response:
    return web.json_response({"result": result, "status": "ok", "time": elapsed(request)}, status=status)


def accepted(request: web.Request) -> web.Response:
    return web.json_response({"status": "accepted", "time": elapsed(request)}, status=202)


def error_body(message: str, time_s: float) -> dict[str, Any]:
    return {"status": {"error": message}, "time": time_s}


async def json_body(request: web.Request, required: bool = True) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise FormatError("Format error in JSON body: EOF while parsing a value at line 1 column 0")
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise FormatError(f"Format error in JSON body: {error}") from error
    if not isinstance(value, dict):
        raise FormatError("Format error in JSON body: expected a JSON object")
    return value


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
