"""Internal routes (`/internal/...`, msgpack bodies) used between nodes and by the coordinator.

The digest routes serve checkers and tests; the others exist for a clustered node: state pushes from the
coordinator, forwarded updates and reads between nodes, and the two sides of a shard transfer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.keys import agent_of, node_of
from node.api.responses import ok, path_int
from node.errors import BadInput, FormatError, NotFound
from node.protocol import MSGPACK_CONTENT_TYPE, msgpack_decode, msgpack_encode
from node.replication.source import transfer_drive
from node.replication.target import transfer_receive
from node.storage.operation_checks import operation_check
from node.storage.points import shard_read


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


async def msgpack_body(request: web.Request) -> Any:
    try:
        return msgpack_decode(await request.read())
    except ValueError as error:
        raise FormatError(f"Format error in msgpack body: {error}") from error


async def state_push(request: web.Request) -> web.Response:
    """The coordinator pushes this node's view of the cluster state (JSON)."""
    agent = agent_of(request)
    version = await agent.state_apply(await request.json())
    return web.json_response({"version": version})


async def shard_apply(request: web.Request) -> web.Response:
    """Forwarded updates for a local replica, in order: `{"ops": [[kind, version, data], ...], "durable"}`."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    shard_id = path_int(request, "shard")
    shard = collection.shards.get(shard_id)
    if shard is None:
        raise NotFound(f"shard {shard_id} of `{collection.name}` is not on this peer")
    body = await msgpack_body(request)
    if not isinstance(body, dict) or type(body.get("ops")) is not list:
        raise BadInput("Malformed apply request: expected {\"ops\": [[kind, version, data], ...], \"durable\"}")
    operations = body["ops"]
    for operation in operations:  # all or nothing: every operation is checked before the first is logged
        operation_check(operation, shard.schema)
    seq = 0
    for operation in operations:
        seq = await shard.apply(operation, durable=bool(body.get("durable")))
    return msgpack_response({"seq": seq})


async def shard_read_route(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    shard = collection.shard_local(path_int(request, "shard"))
    return msgpack_response(shard_read(shard, await msgpack_body(request)))


async def transfer_start(request: web.Request) -> web.Response:
    """The coordinator asks this node, the source, to drive a transfer."""
    agent = agent_of(request)
    transfer = await request.json()
    key = (transfer["collection"], transfer["shard_id"], transfer["from"], transfer["to"])
    running = agent.drivers.get(key)
    if running is None or running.done():
        agent.drivers[key] = node_of(request).background(transfer_drive(agent, transfer),
                                                         f"transfer {key}")
    return web.json_response({"started": True})


async def transfer_recover(request: web.Request) -> web.Response:
    """The source asks this node, the target, to stream and restore the shard snapshot."""
    agent = agent_of(request)
    return msgpack_response(await transfer_receive(agent, await msgpack_body(request)))


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_get("/internal/collections/{collection}/shards/{shard}/digest", shard_digest)
    router.add_get("/internal/digests", digests)
    router.add_post("/internal/cluster/state", state_push)
    router.add_post("/internal/collections/{collection}/shards/{shard}/apply", shard_apply)
    router.add_post("/internal/collections/{collection}/shards/{shard}/read", shard_read_route)
    router.add_post("/internal/transfers/start", transfer_start)
    router.add_post("/internal/transfers/recover", transfer_recover)
