"""The node's aiohttp application: middleware (timing, api-key, error envelope) and the route table.

One middleware turns every NodeError into Qdrant's envelope with Qdrant's status code; snapshot downloads
get plain-text errors, as actix gives them. Whatever else a client can send answers in the envelope too:
a path that matches no route, or a method the path does not serve, is 404 (Qdrant registers every route
with actix's method-guarded macros, so a wrong method matches no resource and gets actix's default 404;
Qdrant's body is empty, shardsim's says so in the envelope), aiohttp's own refusals (a body past the
limit) keep their status in the envelope, and anything unexpected is a 500 in the envelope, logged. The
key check (node/apikey.py) runs first, as Qdrant's auth middleware runs before routing. The Node object
(node/service.py) lives under `NODE` and its lifecycle is the app's cleanup context, so it stops cleanly
on SIGTERM.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from node import clock
from node.api import cluster, collections, internal, points, search, snapshots
from node.api.keys import AGENT, NODE, PLAIN_ERRORS
from node.api.responses import JSON_BYTES_MAX, REQUEST_START, elapsed, error_body, json_response
from node.api.validation import collection_name_violations, raise_if_any
from node.apikey import api_key_refusal, api_keys, path_open
from node.errors import NodeError, NotFound, Unauthorized
from node.protocol import QDRANT_API_VERSION
from node.replication.agent import ClusterAgent
from node.service import Node
from node.settings import NodeSettings

# routes that name a collection to be made: Qdrant checks these names strictly, others leniently
STRICT_NAME_ROUTES = {("PUT", "/collections/{collection}"), ("POST", "/collections/{collection}/snapshots/upload")}
API_KEYS = web.AppKey("api_keys", tuple)  # the main key and the alternative one, when set
DEFINITE_HEADER = "X-Shardsim-Definite"  # "true": the operation certainly did not happen (history `fail`)
log = logging.getLogger("shardsim.node")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_check(request: web.Request) -> None:
    """A path that matches no route, or a method it does not serve: 404, as Qdrant answers both."""
    if request.match_info.http_exception is not None:
        raise NotFound(f"no route for {request.method} {request.path}")


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
        refusal = None if path_open(request.path) else api_key_refusal(request.headers, request.app[API_KEYS])
        if refusal is not None:
            raise Unauthorized(refusal)
        route_check(request)
        collection_path_check(request)
        return await handler(request)
    except NodeError as error:
        headers = {DEFINITE_HEADER: "true" if error.definite else "false"}
        if request.get(PLAIN_ERRORS):
            return web.Response(status=error.status, text=error.text(), headers=headers)
        return json_response(error_body(error.text(), 0.0 if error.parsing else elapsed(request)),
                             status=error.status, headers=headers)
    except web.HTTPException as error:
        if error.status < 400 or request.get(PLAIN_ERRORS):
            raise
        return json_response(error_body(error.text or error.reason, elapsed(request)), status=error.status)
    except Exception as error:  # a bug or an unexpected operating error: say so in Qdrant's words
        log.exception("request %s %s failed", request.method, request.path)
        body = error_body(f"Service internal error: {type(error).__name__}: {error}", elapsed(request))
        return json_response(body, status=500)


# Qdrant answers its git commit (40 hex digits); shardsim answers a stable id of the same shape, derived from
# the Qdrant API version it speaks, so clients that check the shape work.
ROOT_COMMIT = hashlib.sha1(f"shardsim qdrant-api {QDRANT_API_VERSION}".encode()).hexdigest()


async def root(request: web.Request) -> web.Response:
    return json_response({"title": "qdrant - vector search engine", "version": QDRANT_API_VERSION,
                          "commit": ROOT_COMMIT})


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
    app[API_KEYS] = api_keys(settings.api_key, settings.alt_api_key)
    app[JSON_BYTES_MAX] = settings.max_request_bytes
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
    for module in (collections, points, search, snapshots, cluster, internal):
        module.routes_add(app.router)
    return app
