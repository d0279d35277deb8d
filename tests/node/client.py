"""A thin test client for one node: Qdrant's REST paths over a real aiohttp session, plus data helpers.

Tests in tests/node/ talk to real node processes through this class. It returns the status and the decoded
body (JSON when the node answered JSON, else bytes), so a test can assert on both without repeating the
plumbing; the data helpers (`collection_create`, `points_upsert`, `points_all`) read like the spec. The
points to write come from tests/helpers.py (`points_make`, `points_expected`).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from node.retry import wait_until

TIMEOUT = aiohttp.ClientTimeout(total=60)
POLL_S = 0.05
Reply = tuple[int, Any]


class NodeClient:
    """`async with NodeClient(url) as client:` then `await client.call("GET", "/collections")`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NodeClient:
        self.session = aiohttp.ClientSession(timeout=TIMEOUT, headers=self.headers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def reconnect(self) -> None:
        """A fresh session, after the node process was restarted (pooled connections died with it)."""
        assert self.session is not None
        await self.session.close()
        self.session = aiohttp.ClientSession(timeout=TIMEOUT, headers=self.headers)

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        """One request; returns (status, JSON body or raw bytes)."""
        assert self.session is not None
        if body is not None:  # a file-like body: aiohttp warns about large raw bytes bodies
            kwargs["data"] = io.BytesIO(json.dumps(body).encode())
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        url = yarl.URL(self.url + path, encoded=True)  # sent as written: `..` and `%2F` reach the node
        async with self.session.request(method, url, **kwargs) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(raw)
            return response.status, raw

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """A request that must succeed with 200; returns its `result`."""
        status, reply = await self.call(method, path, body, **kwargs)
        assert status == 200, f"{method} {path} -> {status}: {reply!r}"
        assert reply["status"] == "ok" and isinstance(reply["time"], float), reply
        return reply["result"]

    async def download(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        assert self.session is not None
        async with self.session.get(self.url + path) as response:
            return response.status, await response.read(), dict(response.headers)

    async def upload(self, path: str, data: bytes, file_name: str = "upload.snapshot",
                     params: dict[str, str] | None = None) -> Reply:
        form = aiohttp.FormData()
        form.add_field("snapshot", io.BytesIO(data), filename=file_name,
                       content_type="application/octet-stream")
        return await self.call("POST", path, data=form, params=params or {})

    # -- data helpers -------------------------------------------------------------------------------------
    async def collection_create(self, name: str, size: int = 4, shard_number: int = 1) -> None:
        body = {"vectors": {"size": size, "distance": "Cosine"}, "shard_number": shard_number}
        assert await self.ok("PUT", f"/collections/{name}", body) is True

    async def points_upsert(self, name: str, points: list[dict[str, Any]], wait: bool = True,
                            batch_size: int = 2000) -> None:
        for start in range(0, len(points), batch_size):
            batch = points[start:start + batch_size]
            result = await self.ok("PUT", f"/collections/{name}/points",
                                   {"points": batch}, params={"wait": str(wait).lower()})
            assert result["status"] == ("completed" if wait else "acknowledged")

    async def points_all(self, name: str) -> dict[Any, tuple[list[float], dict[str, Any]]]:
        """Every point of a collection by id: (vector, payload)."""
        found: dict[Any, tuple[list[float], dict[str, Any]]] = {}
        offset = None
        for _ in range(10_000):
            body = {"limit": 5000, "with_payload": True, "with_vector": True, "offset": offset}
            page = await self.ok("POST", f"/collections/{name}/points/scroll", body)
            for point in page["points"]:
                found[point["id"]] = (point["vector"], point["payload"])
            offset = page["next_page_offset"]
            if offset is None:
                return found
        raise AssertionError("scroll did not end")

    async def count(self, name: str) -> int:
        return int((await self.ok("POST", f"/collections/{name}/points/count", {}))["count"])

    async def wait_listed(self, path: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        """Poll a snapshot list until it holds `count` entries."""
        async def listed() -> list[dict[str, Any]] | None:
            entries = list(await self.ok("GET", path))
            return entries if len(entries) >= count else None
        return await wait_until(listed, timeout_s, POLL_S, what=f"{path} to list {count} snapshots")


def files_under(root: Path) -> set[str]:
    """Every file below `root`, as relative paths (to show that nothing was written or removed)."""
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A tar archive in memory from regular files `(name, data)` and prepared TarInfo entries (links...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.GNU_FORMAT) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@asynccontextmanager
async def file_server(files: dict[str, bytes]) -> AsyncIterator[str]:
    """A tiny HTTP server on 127.0.0.1 serving `files` by name (404 for others); yields its base URL."""
    from aiohttp import web

    async def serve(request: web.Request) -> web.Response:
        data = files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="no such file")
        return web.Response(body=data, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
