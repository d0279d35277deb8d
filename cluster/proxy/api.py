"""The Toxiproxy v2 HTTP API of the fault proxy (aiohttp routes).

Part of `cluster.proxy`, built by `ProxyServer`. Every route, status code and JSON shape is the real
server's (docs/proxy.md): POST on `/proxies/{p}` and `/proxies/{p}/toxics/{t}` is the
deprecated spelling of PATCH; errors are `{"error": "...", "status": N}`; a `Mozilla/` User-Agent gets
403 as from the real server. Handlers only decode, call the `ProxyRegistry`, and encode.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from cluster.proxy import errors
from cluster.proxy.metrics import CONTENT_TYPE, metrics_render
from cluster.proxy.registry import ProxyRegistry
from cluster.proxy.toxics import toxic_from_json

VERSION = "2.12.0"
REGISTRY_KEY = web.AppKey("registry", ProxyRegistry)
log = logging.getLogger("shardsim.proxy")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda value: json.dumps(value, allow_nan=False))


def _error(error: errors.ApiError) -> web.Response:
    return _json(error.to_json(), status=error.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return web.Response(status=403, text="User agent not allowed\n")
    try:
        return await handler(request)
    except errors.ApiError as error:
        return _error(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(errors.ApiError(error.reason.lower(), error.status))
    except Exception as error:  # a bug: still an error body in Toxiproxy's shape, and logged
        log.exception("proxy API %s %s failed", request.method, request.path)
        return _error(errors.ApiError(f"{type(error).__name__}: {error}", 500))


def _constant_refuse(name: str) -> object:
    """Go's encoding/json has no NaN or Infinity: its words for the first byte it cannot read."""
    if name.startswith("-"):
        raise ValueError("invalid character 'I' in numeric literal")
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _float_checked(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


async def _body(request: web.Request) -> object:
    """The JSON body, refused as Toxiproxy's Go decoder refuses it (no NaN or Infinity, no number beyond a
    float64, nesting bounded: Go stops at 10000 levels with `exceeded max depth`, Python's parser sooner)."""
    raw = await request.read()
    if not raw.strip():
        raise errors.BAD_REQUEST_BODY.joined("EOF")
    try:
        return json.loads(raw, parse_constant=_constant_refuse, parse_float=_float_checked)
    except RecursionError:
        raise errors.BAD_REQUEST_BODY.joined("exceeded max depth") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise errors.BAD_REQUEST_BODY.joined(str(error)) from None


def _registry(request: web.Request) -> ProxyRegistry:
    return request.app[REGISTRY_KEY]


async def proxies_index(request: web.Request) -> web.Response:
    return _json({name: proxy.to_json() for name, proxy in _registry(request).proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    proxy = await _registry(request).create(await _body(request))
    return _json(proxy.to_json(), status=201)


async def populate(request: web.Request) -> web.Response:
    proxies = await _registry(request).populate(await _body(request))
    return _json({"proxies": [proxy.to_json() for proxy in proxies]}, status=201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_registry(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    registry = _registry(request)
    registry.get(request.match_info["proxy"])
    proxy = await registry.update(request.match_info["proxy"], await _body(request))
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    await _registry(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def toxics_index(request: web.Request) -> web.Response:
    return _json(_registry(request).get(request.match_info["proxy"]).toxics_json())


async def toxic_create(request: web.Request) -> web.Response:
    proxy = _registry(request).get(request.match_info["proxy"])
    toxic = proxy.toxic_add(toxic_from_json(await _body(request)))
    return _json(toxic.to_json())


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _registry(request).get(request.match_info["proxy"])
    return _json(proxy.toxic_get(request.match_info["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _registry(request).get(request.match_info["proxy"])
    proxy.toxic_get(request.match_info["toxic"])
    toxic = proxy.toxic_update(request.match_info["toxic"], await _body(request))
    return _json(toxic.to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    _registry(request).get(request.match_info["proxy"]).toxic_remove(request.match_info["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    await _registry(request).reset()
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    return _json({"version": VERSION})


async def metrics(request: web.Request) -> web.Response:
    text = metrics_render(_registry(request).metrics_rows())
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def app_build(registry: ProxyRegistry) -> web.Application:
    """The aiohttp application serving the API over `registry`."""
    app = web.Application(middlewares=[errors_middleware])
    app[REGISTRY_KEY] = registry
    router = app.router
    router.add_post("/reset", reset)
    router.add_get("/proxies", proxies_index, allow_head=False)
    router.add_post("/proxies", proxy_create)
    router.add_post("/populate", populate)
    router.add_get("/proxies/{proxy}", proxy_show, allow_head=False)
    router.add_route("PATCH", "/proxies/{proxy}", proxy_update)
    router.add_post("/proxies/{proxy}", proxy_update)
    router.add_delete("/proxies/{proxy}", proxy_delete)
    router.add_get("/proxies/{proxy}/toxics", toxics_index, allow_head=False)
    router.add_post("/proxies/{proxy}/toxics", toxic_create)
    router.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show, allow_head=False)
    router.add_route("PATCH", "/proxies/{proxy}/toxics/{toxic}", toxic_update)
    router.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    router.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)
    router.add_get("/version", version, allow_head=False)
    router.add_get("/metrics", metrics, allow_head=False)
    return app
