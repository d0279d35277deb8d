"""The node's aiohttp application: middleware (timing, api-key, error envelope) and the route table.

One middleware turns every NodeError into Qdrant's envelope with Qdrant's status code; snapshot downloads
get plain-text errors, as actix gives them. The Node object (node/service.py) lives under `NODE` and its
lifecycle is the app's cleanup context, so it stops cleanly on SIGTERM.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from node import clock
from node.api import cluster, collections, internal, points, snapshots
from node.api.keys import AGENT, NODE, PLAIN_ERRORS
from node.api.responses import REQUEST_START, elapsed, error_body
from node.api.validation import collection_name_violations, raise_if_any
from node.errors import NodeError, Unauthorized
from node.protocol import QDRANT_API_VERSION
from node.replication.agent import ClusterAgent
from node.service import Node
from node.settings import NodeSettings

OPEN_PATHS = ("/healthz", "/livez", "/readyz")
# routes that name a collection to be made: Qdrant checks these names strictly, others leniently
STRICT_NAME_ROUTES = {("PUT", "/collections/{collection}"), ("POST", "/collections/{collection}/snapshots/upload")}
DEFINITE_HEADER = "X-Shardsim-Definite"  # "true": the operation certainly did not happen (history `fail`)
log = logging.getLogger("shardsim.node")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def api_key_check(request: web.Request, api_key: str) -> None:
    given = request.headers.get("api-key")
    authorization = request.headers.get("Authorization", "")
    if given is None and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None:
        raise Unauthorized("Must provide an API key or an Authorization bearer token")
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise Unauthorized("Invalid API key or JWT")


def collection_path_check(request: web.Request) -> None:
    """Qdrant validates the collection name of every route before anything else: 422, not 404."""
    name = request.match_info.get("collection")
    if name is None:
        return
    resource = request.match_info.route.resource
    strict = resource is not None and (request.method, resource.canonical) in STRICT_NAME_ROUTES
    raise_if_any("path parameters", collection_name_violations(name, strict=strict))


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_START] = clock.monotonic()
    try:
        api_key = request.app[NODE].settings.api_key
        if api_key and request.path not in OPEN_PATHS:
            api_key_check(request, api_key)
        collection_path_check(request)
        return await handler(request)
    except NodeError as error:
        headers = {DEFINITE_HEADER: "true" if error.definite else "false"}
        if request.get(PLAIN_ERRORS):
            return web.Response(status=error.status, text=error.text(), headers=headers)
        return web.json_response(error_body(error.text(), 0.0 if error.parsing else elapsed(request)),
                                 status=error.status, headers=headers)
    except web.HTTPException:
        raise
    except Exception as error:  # a bug or an unexpected operating error: say so in Qdrant's words
        log.exception("request %s %s failed", request.method, request.path)
        body = error_body(f"Service internal error: {type(error).__name__}: {error}", elapsed(request))
        return web.json_response(body, status=500)


async def root(request: web.Request) -> web.Response:
    return web.json_response({"title": "qdrant - vector search engine",
                              "version": QDRANT_API_VERSION, "commit": "shardsim"})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="healthz check passed")


async def readyz(request: web.Request) -> web.Response:
    if not request.app[NODE].ready:
        return web.Response(status=503, text="node is not ready")
    return web.Response(text="all shards are ready")


def app_build(settings: NodeSettings) -> web.Application:
    app = web.Application(middlewares=[envelope_middleware], client_max_size=settings.max_upload_bytes)
    node = Node(settings)
    app[NODE] = node
    if settings.clustered:
        agent = ClusterAgent(node)
        node.cluster = agent
        app[AGENT] = agent

    async def node_lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with node.running():
            yield

    app.cleanup_ctx.append(node_lifecycle)
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    for module in (collections, points, snapshots, cluster, internal):
        module.routes_add(app.router)
    return app
