"""The coordinator checks the cluster's API key on every route but its health routes (issue 14 defect 8).

A coordinator started with `--api-key` used to answer `GET /internal/state` and `PUT /internal/settings`
to anyone. The routes are read from the app's own router, so a route added later is checked too; the check
and its messages are the nodes' (node/apikey.py, Qdrant's): 401 `Must provide an API key or an Authorization
bearer token` without a key, `Invalid API key or JWT` with a wrong one, in the coordinator's error envelope.
The enumeration runs the app in this process (SQLite in tmp_path, no nodes, no broker); the last test starts
the real `python -m cluster.coordinator` process, as a user would, and stops it by PID.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cluster.coordinator.engine import Coordinator, CoordinatorSettings
from cluster.coordinator.server import app_build
from node.apikey import INVALID, MISSING
from tests.processes import free_port, wait_port_open

KEY, ALT_KEY = "c00rd", "c00rd-next"
OPEN = {"/healthz", "/readyz"}


def route_calls(app: web.Application) -> list[tuple[str, str]]:
    calls = {(route.method, re.sub(r"\{[^}]+\}", "1", route.resource.canonical))
             for route in app.router.routes() if route.resource is not None}
    assert len(calls) > 10, calls
    return sorted(calls)


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], web.Application]]:
    settings = CoordinatorSettings(db_path=tmp_path / "coordinator.sqlite", api_key=KEY, alt_api_key=ALT_KEY,
                                   health_interval_s=60.0, auto_recovery_interval_s=60.0)
    app = app_build(Coordinator(settings))
    async with TestClient(TestServer(app)) as client:
        yield client, app


async def answer(client: TestClient[web.Request, web.Application], method: str, path: str,
                 headers: dict[str, str]) -> tuple[int, Any]:
    async with client.request(method, path, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body


async def test_every_route_but_health_refuses_a_missing_or_wrong_key(keyed: Any) -> None:
    client, app = keyed
    for method, path in route_calls(app):
        for headers, message in (({}, MISSING), ({"api-key": "wrong"}, INVALID),
                                 ({"Authorization": "Bearer wrong"}, INVALID)):
            status, body = await answer(client, method, path, headers)
            if path in OPEN:
                assert status == 200, (method, path, body)
                continue
            assert status == 401, (method, path, headers, status, body)
            if method != "HEAD":
                assert body["status"] == {"error": message} and body["kind"] == "Unauthorized", body


async def test_either_key_opens_every_route(keyed: Any) -> None:
    client, app = keyed
    for key in (KEY, ALT_KEY):
        for method, path in route_calls(app):
            status, body = await answer(client, method, path, {"api-key": key})
            assert status != 401 and status < 500, (method, path, status, body)


async def test_a_coordinator_process_started_with_a_key_hides_its_state(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cluster.coordinator", "--port", str(port), "--db", str(tmp_path / "c.sqlite"),
        "--api-key", KEY, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_port_open(port, 20.0, process)
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{url}/internal/state") as response:
                assert (response.status, (await response.json())["status"]) == (401, {"error": MISSING})
            async with session.put(f"{url}/internal/settings", json={"step": True}) as response:
                assert response.status == 401
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 200
            async with session.get(f"{url}/internal/state", headers={"api-key": KEY}) as response:
                assert response.status == 200 and "collections" in await response.json()
            async with session.get(f"{url}/internal/state", headers={"api-key": "wrong"}) as response:
                assert response.status == 401
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                process.kill()
                await process.wait()
