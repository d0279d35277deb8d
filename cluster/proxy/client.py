"""The project's own async client of the Toxiproxy v2 API (ours or the real server).

Part of `cluster.proxy`, used by the nemesis and by tests. It owns one aiohttp session (an async context
manager) and puts a timeout on every call. Every error the server answers becomes a `ToxiproxyError`
with the status and the server's message; network failures and timeouts are raised as `ToxiproxyError`
too (status 0), so callers catch one family.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL


class ToxiproxyError(Exception):
    """An error from the Toxiproxy API: `status` (0 when the server could not be reached) and `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"toxiproxy: {status} {message}")
        self.status = status
        self.message = message


def _segment(name: str) -> str:
    return quote(name, safe="")


class ToxiproxyClient:
    """`async with ToxiproxyClient("http://127.0.0.1:8474") as toxiproxy: await toxiproxy.version()`."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ToxiproxyClient:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        if self._session is None:
            raise RuntimeError("ToxiproxyClient is used outside `async with`")
        url = URL(self.url + path, encoded=True)
        try:
            async with self._session.request(method, url, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    raise ToxiproxyError(response.status, _error_message(text))
                if response.status == 204 or not text:
                    return None
                return await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise ToxiproxyError(0, f"{method} {url}: {error!r}") from error

    async def version(self) -> str:
        return str((await self._call("GET", "/version"))["version"])

    async def proxies(self) -> dict[str, dict]:
        return dict(await self._call("GET", "/proxies"))

    async def proxy_create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> dict:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return dict(await self._call("POST", "/proxies", body))

    async def proxy_get(self, name: str) -> dict:
        return dict(await self._call("GET", f"/proxies/{_segment(name)}"))

    async def proxy_update(self, name: str, **fields: Any) -> dict:
        return dict(await self._call("PATCH", f"/proxies/{_segment(name)}", fields))

    async def proxy_delete(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{_segment(name)}")

    async def populate(self, proxies: list[dict]) -> list[dict]:
        return list((await self._call("POST", "/populate", proxies))["proxies"])

    async def toxic_add(
        self,
        proxy: str,
        type: str,
        attributes: dict | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> dict:
        body = {
            "name": name or f"{type}_{stream}",
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        return dict(await self._call("POST", f"/proxies/{_segment(proxy)}/toxics", body))

    async def toxic_update(
        self, proxy: str, toxic: str, attributes: dict | None = None, toxicity: float | None = None
    ) -> dict:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        return dict(await self._call("PATCH", f"/proxies/{_segment(proxy)}/toxics/{_segment(toxic)}", body))

    async def toxic_remove(self, proxy: str, toxic: str) -> None:
        await self._call("DELETE", f"/proxies/{_segment(proxy)}/toxics/{_segment(toxic)}")

    async def toxics(self, proxy: str) -> list[dict]:
        return list(await self._call("GET", f"/proxies/{_segment(proxy)}/toxics"))

    async def reset(self) -> None:
        await self._call("POST", "/reset")


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return text.strip()
