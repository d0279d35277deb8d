"""Internal routes (`/internal/...`, msgpack bodies) used between nodes and by the coordinator.

Always present: the shard digest route used by checkers and tests. The cluster agent adds the routes for
forwarded updates, reads, state pushes and transfers (node/cluster_routes.py).
"""

from __future__ import annotations

from aiohttp import web

from node.keys import node_of
from node.protocol import MSGPACK_CONTENT_TYPE, msgpack_encode
from node.responses import ok, path_int


async def shard_digest(request: web.Request) -> web.Response:
    """`{"shard_id", "points_count", "seq", "digest"}` of a local shard."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    shard = collection.shard_local(path_int(request, "shard"))
    return ok(request, shard.info())


async def digests(request: web.Request) -> web.Response:
    """Every local shard's info: `{collection: {shard: info}}`."""
    node = node_of(request)
    result = {name: {str(sid): shard.info() for sid, shard in c.shards.items()}
              for name, c in node.storage.collections.items()}
    return ok(request, result)


def msgpack_response(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgpack_encode(value), status=status, content_type=MSGPACK_CONTENT_TYPE)


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_get("/internal/collections/{collection}/shards/{shard}/digest", shard_digest)
    router.add_get("/internal/digests", digests)
