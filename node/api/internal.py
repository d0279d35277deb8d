"""Internal routes (`/internal/...`, msgpack bodies) used between nodes and by the coordinator.

The digest routes serve checkers and tests; the others exist for a clustered node: state pushes from the
coordinator, forwarded updates and reads between nodes, and the two sides of a shard transfer. A body of
the wrong shape is a 400 before anything is touched (`shape_check`), as on the public routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from node.api.keys import AGENT, agent_of, node_of
from node.api.responses import json_response, json_value, ok, path_int
from node.errors import BadRequest, FormatError, NotFound
from node.protocol import MSGPACK_CONTENT_TYPE, TransferKey, msgpack_decode, msgpack_encode
from node.replication.source import transfer_drive
from node.replication.target import transfer_receive
from node.storage.operations import operation_check
from node.storage.points import shard_read

DRIVER_STOP_TIMEOUT_S = 5.0  # a stale transfer driver stops at its next await; this bounds the wait


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


def shape_check(value: Any, fields: Mapping[str, type], what: str) -> dict[str, Any]:
    """`value` as a dict with each of `fields` of its type (a bool is no int); 400 naming the first wrong."""
    if not isinstance(value, dict):
        raise BadRequest(f"Malformed {what}: expected an object")
    for name, kind in fields.items():
        field = value.get(name)
        if not isinstance(field, kind) or (kind is int and isinstance(field, bool)):
            raise BadRequest(f"Malformed {what}: `{name}` missing or of the wrong type")
    return value


STATE_FIELDS = {"version": int, "peers": dict, "collections": dict, "transfers": list}
COLLECTION_STATE_FIELDS = {"config": dict, "shards": dict}
TRANSFER_FIELDS = {"collection": str, "shard_id": int, "from": int, "to": int}
RECOVER_FIELDS = {"collection": str, "shard": int, "from": int, "to": int}


def state_view_check(view: Any) -> dict[str, Any]:
    shape_check(view, STATE_FIELDS, "cluster state")
    for name, description in view["collections"].items():
        shape_check(description, COLLECTION_STATE_FIELDS, f"cluster state of collection {name}")
    for transfer in view["transfers"]:
        shape_check(transfer, TRANSFER_FIELDS, "cluster state transfer")
    return view


async def state_push(request: web.Request) -> web.Response:
    """The coordinator pushes this node's view of the cluster state (JSON)."""
    agent = agent_of(request)
    version = await agent.state_apply(state_view_check(await json_value(request)))
    return json_response({"version": version})


async def shard_apply(request: web.Request) -> web.Response:
    """Forwarded updates for a local replica, in order: `{"ops": [[kind, version, data], ...], "durable"}`."""
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    shard_id = path_int(request, "shard")
    shard = collection.shards.get(shard_id)
    if shard is None:
        raise NotFound(f"shard {shard_id} of `{collection.name}` is not on this peer")
    body = shape_check(await msgpack_body(request), {"ops": list}, "apply request")
    operations = body["ops"]
    for operation in operations:  # all or nothing: every operation is checked before the first is logged
        operation_check(operation, shard.schema)
    missed = routing_missed(request, collection.name, shard_id, body)
    if missed:
        # the sender routed this update by an older state than ours, which has replicas taking updates that it
        # left out: applied here, the update would be acknowledged without them. Refused, nothing applied;
        # the sender pulls the state and routes it again (ReplicaApply in node/replication/agent.py)
        return msgpack_response({"stale": missed})
    seq = 0
    for operation in operations:
        seq = await shard.apply(operation, durable=bool(body.get("durable")))
    return msgpack_response({"seq": seq})


def routing_missed(request: web.Request, name: str, shard_id: int, body: dict[str, Any]) -> list[int]:
    """The replicas taking updates in this node's state that a client update's sender left out, when the
    sender's state (`state_version`, `targets`) is older; [] otherwise, or for a transfer's replay (which
    names neither)."""
    version, targets = body.get("state_version"), body.get("targets")
    if version is None and targets is None:
        return []
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(targets, list) or \
            not all(isinstance(t, int) and not isinstance(t, bool) for t in targets):
        raise BadRequest("Malformed apply request: `state_version` must be an integer and `targets` a list of "
                         "peer ids")
    agent = request.app.get(AGENT)
    if agent is None or agent.version <= version:
        return []
    return sorted(set(agent.updatable(name, shard_id)) - set(targets))


async def shard_read_route(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    shard = collection.shard_local(path_int(request, "shard"))
    body = shape_check(await msgpack_body(request), {"kind": str}, "read request")
    try:
        return msgpack_response(shard_read(shard, body))
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # a read changes nothing: refuse it whole
        raise BadRequest(f"Malformed read request: {type(error).__name__}: {error}") from None


async def transfer_start(request: web.Request) -> web.Response:
    """The coordinator asks this node, the source, to drive a transfer. The coordinator asks once per
    transfer it registers, so a driver still running for the same key drives an earlier transfer that was
    aborted meanwhile (e.g. waiting between attempts): it is stopped, so that it cannot report its steps
    for the new one and then quit on the old one's `TransferGone`, leaving the new one without a driver."""
    agent = agent_of(request)
    transfer = shape_check(await json_value(request), TRANSFER_FIELDS, "transfer")
    key = TransferKey.of(transfer)
    running = agent.drivers.get(key)
    if running is not None and not running.done():
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(running), DRIVER_STOP_TIMEOUT_S)
    agent.drivers[key] = node_of(request).background(transfer_drive(agent, transfer), f"transfer {key.text()}")
    return json_response({"started": True})


async def transfer_recover(request: web.Request) -> web.Response:
    """The source asks this node, the target, to stream and restore the shard snapshot."""
    agent = agent_of(request)
    body = shape_check(await msgpack_body(request), RECOVER_FIELDS, "transfer recovery request")
    return msgpack_response(await transfer_receive(agent, body))


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_get("/internal/collections/{collection}/shards/{shard}/digest", shard_digest)
    router.add_get("/internal/digests", digests)
    router.add_post("/internal/cluster/state", state_push)
    router.add_post("/internal/collections/{collection}/shards/{shard}/apply", shard_apply)
    router.add_post("/internal/collections/{collection}/shards/{shard}/read", shard_read_route)
    router.add_post("/internal/transfers/start", transfer_start)
    router.add_post("/internal/transfers/recover", transfer_recover)
