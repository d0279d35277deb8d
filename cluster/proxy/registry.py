"""The collection of proxies behind the API: create, change, delete, populate, reset.

Part of `cluster.proxy`, owned by `ProxyServer`; `api.py` calls it with decoded JSON bodies. Changes are
serialized by one lock (a change may await a bind or the closing of connections), so two API calls never
interleave half-way. Semantics follow Toxiproxy: a new proxy is enabled unless told otherwise; `populate`
validates every entry first, then creates or replaces by name (an entry with the same listen and upstream
keeps the existing proxy); `reset` enables every proxy and removes every toxic.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster.proxy import errors
from cluster.proxy.metrics import MetricsRow
from cluster.proxy.proxy import Proxy

LISTEN_DEFAULT = "127.0.0.1:0"


def _fields(body: object, current: Proxy | None = None) -> dict[str, Any]:
    """Proxy fields from a body, defaulting to `current`'s (PATCH) or to the creation defaults."""
    if not isinstance(body, dict):
        raise errors.BAD_REQUEST_BODY.joined("expected a JSON object")
    fields: dict[str, Any] = {
        "name": current.name if current else "",
        "listen": current.listen if current else LISTEN_DEFAULT,
        "upstream": current.upstream if current else "",
        "enabled": current.enabled if current else True,
    }
    for key, kind in (("name", str), ("listen", str), ("upstream", str), ("enabled", bool)):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise errors.BAD_REQUEST_BODY.joined(f"field {key!r} must be a {kind.__name__}")
        fields[key] = value
    return fields


def _required(fields: dict[str, Any], where: str = "") -> None:
    for key in ("name", "upstream"):
        if not fields[key]:
            raise errors.MISSING_FIELD.joined(key + where)


async def _started(proxy: Proxy) -> None:
    try:
        await proxy.start()
    except OSError as error:
        raise errors.ApiError(f"listen tcp {proxy.listen}: {error.strerror or error}", 500) from error


class ProxyRegistry:
    """Every proxy of one server, by name."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise errors.PROXY_NOT_FOUND from None

    def metrics_rows(self) -> list[MetricsRow]:
        return [proxy.metrics_row() for proxy in self.proxies.values()]

    async def create(self, body: object) -> Proxy:
        fields = _fields(body)
        _required(fields)
        async with self._lock:
            if fields["name"] in self.proxies:
                raise errors.PROXY_EXISTS
            proxy = Proxy(fields["name"], fields["listen"], fields["upstream"])
            if fields["enabled"]:
                await _started(proxy)
            self.proxies[proxy.name] = proxy
            return proxy

    async def update(self, name: str, body: object) -> Proxy:
        async with self._lock:
            proxy = self.get(name)
            fields = _fields(body, current=proxy)
            try:
                await proxy.update(fields["listen"], fields["upstream"], fields["enabled"])
            except OSError as error:
                raise errors.ApiError(f"listen tcp {proxy.listen}: {error.strerror or error}", 500) from error
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            del self.proxies[name]
            await proxy.stop()

    async def populate(self, body: object) -> list[Proxy]:
        if not isinstance(body, list):
            raise errors.BAD_REQUEST_BODY.joined("expected a JSON list of proxies")
        entries = [_fields(entry) for entry in body]
        for number, fields in enumerate(entries, start=1):
            _required(fields, f" at proxy {number}")
            Proxy(fields["name"], fields["listen"], fields["upstream"])  # validates the addresses
        names = [fields["name"] for fields in entries]
        if len(set(names)) != len(names):
            raise errors.BAD_REQUEST_BODY.joined("duplicate proxy name")
        async with self._lock:
            return [await self._replaced(fields) for fields in entries]

    async def _replaced(self, fields: dict[str, Any]) -> Proxy:
        existing = self.proxies.get(fields["name"])
        if existing is not None:
            if existing.listen == fields["listen"] and existing.upstream == fields["upstream"]:
                return existing
            del self.proxies[existing.name]
            await existing.stop()
        proxy = Proxy(fields["name"], fields["listen"], fields["upstream"])
        if fields["enabled"]:
            await _started(proxy)
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        async with self._lock:
            for proxy in self.proxies.values():
                await _started(proxy)
                proxy.toxics_reset()

    async def close(self) -> None:
        async with self._lock:
            proxies, self.proxies = list(self.proxies.values()), {}
            for proxy in proxies:
                await proxy.stop()
