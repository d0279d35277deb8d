"""API keys on every route of the node, as Qdrant checks them (node/apikey.py, issue 14 item 5).

The routes are read from the app's own router (`app.router.routes()`), so a route added later is checked
without editing this test. Each is called with no key, a wrong `api-key`, a wrong bearer token and a key
with a character that is not visible ASCII: every one is 401 in the error envelope with Qdrant's message,
except the routes Qdrant leaves open (`/`, `/healthz`, `/livez`, `/readyz`). With the main key or the
alternative one (Qdrant's `service.alt_api_key`, for rotating keys) no route answers 401.
The app runs in this process (aiohttp's test server) over a data folder in the test's tmp_path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import app_build
from node.apikey import INVALID, MISSING, OPEN_PATHS
from node.settings import settings_from_args

KEY, ALT_KEY = "s3cret", "n3xt-s3cret"
REFUSED_HEADERS = [({}, MISSING), ({"api-key": "wrong"}, INVALID), ({"Authorization": "Bearer wrong"}, INVALID),
                   ({"Authorization": f"bearer {KEY}"}, MISSING),  # Qdrant's prefix is case-sensitive
                   ({"api-key": ""}, INVALID)]


def route_calls(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of `app`, each path parameter filled with `1`."""
    calls = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        calls.append((route.method, re.sub(r"\{[^}]+\}", "1", canonical)))
    assert len(calls) > 40, calls  # the whole table, not an empty router
    return sorted(set(calls))


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], web.Application]]:
    settings = settings_from_args(["--data-dir", str(tmp_path / "data"), "--peer-id", "1", "--api-key", KEY,
                                   "--alt-api-key", ALT_KEY])
    app = app_build(settings)
    async with TestClient(TestServer(app)) as client:
        yield client, app


async def answer(client: TestClient[web.Request, web.Application], method: str, path: str,
                 headers: dict[str, str]) -> tuple[int, Any]:
    async with client.request(method, path, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body


async def test_every_route_refuses_a_missing_or_wrong_key_in_the_envelope(keyed: Any) -> None:
    client, app = keyed
    for method, path in route_calls(app):
        for headers, message in REFUSED_HEADERS:
            status, body = await answer(client, method, path, headers)
            if path in OPEN_PATHS:
                assert status != 401, (method, path, headers, body)
                continue
            assert status == 401, (method, path, headers, status, body)
            if method != "HEAD":
                assert body["status"] == {"error": message} and isinstance(body["time"], float), (path, body)


async def test_a_path_that_matches_no_route_needs_the_key_too(keyed: Any) -> None:
    """Qdrant's check runs before routing: an unknown path is 401 without the key, 404 with it."""
    client, _ = keyed
    assert (await answer(client, "GET", "/no/such/route", {}))[0] == 401
    assert (await answer(client, "PATCH", "/collections", {}))[0] == 401
    status, body = await answer(client, "GET", "/no/such/route", {"api-key": KEY})
    assert (status, body["status"]) == (404, {"error": "Not found: no route for GET /no/such/route"})


@pytest.mark.parametrize("headers", [{"api-key": KEY}, {"api-key": ALT_KEY}, {"Authorization": f"Bearer {ALT_KEY}"}])
async def test_the_main_and_the_alternative_key_open_every_route(keyed: Any, headers: dict[str, str]) -> None:
    client, app = keyed
    for method, path in route_calls(app):
        status, body = await answer(client, method, path, headers)
        assert status != 401 and status < 500, (method, path, status, body)


def test_the_alternative_key_is_read_from_qdrants_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QDRANT__SERVICE__ALT_API_KEY", ALT_KEY)
    monkeypatch.delenv("QDRANT__SERVICE__API_KEY", raising=False)
    settings = settings_from_args(["--data-dir", str(tmp_path)])
    assert (settings.api_key, settings.alt_api_key) == (None, ALT_KEY)
