"""The coordinator's HTTP API (JSON), used by nodes, the launcher and tests; never by Qdrant clients.

    GET  /readyz, GET /internal/state?peer_id&boot_id&version   (a node pulls its view; reports its boot)
    PUT  /internal/topology {peers, links}     POST /internal/peers {peer_id, name, address}
    GET  /internal/peers (health and applied version of each)   DELETE /internal/peers/{peer_id}?force
    PUT  /internal/settings {...}              POST /internal/step/continue
    POST /internal/collections/{c} {config}    DELETE /internal/collections/{c}
    POST /internal/collections/{c}/cluster {move_shard|replicate_shard|abort_transfer|drop_replica}
    PUT|DELETE /internal/collections/{c}/index {field_name, field_schema}   (payload indexes, in the config)
    POST /internal/replicas/failed {collection, shard, peer, reason, reporter}
    POST /internal/transfers/{progress|partial|finish|abort|attempt_failed} {collection, shard, from, to, ...}
    POST /internal/recovery/{begin|finish|abort} {collection, peer, shards, added?, previous?, priority, kind}
Errors: `{"status": {"error": "..."}, "kind": "<node error kind>"}` with the HTTP status, so a node can
re-raise the same error to its client in Qdrant's words; every error is in this shape (an unknown route, a
body that is not JSON as serde_json reads it, one larger than `BODY_BYTES_MAX`, a missing key), and every
body is valid JSON (node/jsonwire.py). With `--api-key` (or `--alt-api-key`) every route but `/healthz` and
`/readyz` needs the key, checked as the nodes check it (node/apikey.py): 401 otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from cluster.coordinator import operations
from cluster.coordinator.engine import Coordinator
from cluster.coordinator.operations import OperationError
from node import clock
from node.apikey import api_key_refusal, api_keys, path_open
from node.jsonwire import JsonSyntaxError, json_loads, json_text
from node.protocol import PRIORITY_DEFAULT_CHOICES, TransferKey

COORDINATOR = web.AppKey("coordinator", Coordinator)
API_KEYS = web.AppKey("api_keys", tuple)  # the main key and the alternative one, when set
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY_BYTES_MAX = 32 << 20  # a JSON body past this is refused (the state and settings are far smaller)
log = logging.getLogger("shardsim.coordinator")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=json_text)


def reply(result: Any, version: int) -> web.Response:
    return json_response({"result": result, "version": version, "status": "ok"})


def error_response(error: OperationError) -> web.Response:
    return json_response({"status": {"error": error.text()}, "kind": error.kind, "message": error.message},
                         status=error.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        refusal = None if path_open(request.path) else api_key_refusal(request.headers, request.app[API_KEYS])
        if refusal is not None:
            raise OperationError("Unauthorized", 401, refusal)
        if request.match_info.http_exception is not None:
            error = request.match_info.http_exception
            raise OperationError("NotFound" if error.status == 404 else "BadRequest", error.status,
                                 f"no route for {request.method} {request.path}")
        return await handler(request)
    except OperationError as error:
        return error_response(error)
    except (KeyError, TypeError, ValueError) as error:
        return error_response(OperationError("BadRequest", 400, f"{type(error).__name__}: {error}"))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_response(OperationError("BadRequest", error.status, error.text or error.reason))
    except Exception as error:  # a bug: say so in the envelope, and log it
        log.exception("request %s %s failed", request.method, request.path)
        return error_response(OperationError("ServiceError", 500, f"{type(error).__name__}: {error}"))


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object of the body, read as the nodes read theirs (serde_json's rules and words)."""
    if request.content_length is not None and request.content_length > BODY_BYTES_MAX:
        raise OperationError("FormatError", 400, f"JSON payload ({request.content_length} bytes) is larger "
                             f"than allowed (limit: {BODY_BYTES_MAX} bytes).")
    try:
        value = json_loads(await request.read())
    except JsonSyntaxError as error:
        raise OperationError("FormatError", 400, f"Format error in JSON body: {error}") from None
    if not isinstance(value, dict):
        raise OperationError("FormatError", 400, "Format error in JSON body: expected a JSON object")
    return value


async def readyz(request: web.Request) -> web.Response:
    return web.Response(text="coordinator ready")


async def state_get(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    peer = request.query.get("peer_id")
    version = request.query.get("version")
    view = await coordinator.state_pulled(int(peer) if peer else None, request.query.get("boot_id"),
                                          int(version) if version else None)
    return json_response(view)


async def topology_put(request: web.Request) -> web.Response:
    body = await body_of(request)
    peers = [(int(peer["peer_id"]), str(peer["name"]), str(peer["address"])) for peer in body.get("peers", [])]
    links = {str(k): str(v) for k, v in body["links"].items()} if "links" in body else None
    return reply(True, await request.app[COORDINATOR].topology_set(peers, links))


async def peer_register(request: web.Request) -> web.Response:
    body = await body_of(request)
    version = await request.app[COORDINATOR].peer_register(int(body["peer_id"]), str(body["name"]),
                                                           str(body["address"]))
    return reply(True, version)


async def peers_get(request: web.Request) -> web.Response:
    """Each peer's health (its last `/readyz` check) and the newest state version it applied."""
    coordinator = request.app[COORDINATOR]
    return reply(coordinator.peers_status(), coordinator.state.version)


async def peer_remove(request: web.Request) -> web.Response:
    """Qdrant's `DELETE /cluster/peer/{peer_id}?force` (operations.peer_remove)."""
    force = request.query.get("force", "false")
    if force not in ("true", "false"):
        raise OperationError("FormatError", 400, "Deserialize error in query parameters: query parameter "
                             "`force`: provided string was not `true` or `false`")
    peer = int(request.match_info["peer_id"])
    return reply(True, await request.app[COORDINATOR].peer_remove(peer, force == "true"))


def count_valid(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def pauses_valid(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(s, int | float) and not isinstance(s, bool) and s >= 0
                                           for s in value.values())


SETTINGS_VALID: dict[str, Callable[[Any], bool]] = {
    "default_priority": lambda value: value in PRIORITY_DEFAULT_CHOICES,
    "incoming_transfers_limit": count_valid,
    "outgoing_transfers_limit": count_valid,
    "transfer_phase_pause_s": pauses_valid,  # {phase: seconds}: scenarios hold a transfer after a phase
    "step": lambda value: isinstance(value, bool),
}


def settings_check(body: dict[str, Any]) -> None:
    """Only the settings the coordinator and the nodes read, each of its type: a stray value would break the
    automatic recovery loop or every node's view, so it is refused whole, before anything changes."""
    for name, value in body.items():
        valid = SETTINGS_VALID.get(name)
        if valid is None:
            raise OperationError("BadRequest", 400, f"unknown setting `{name}` (known: {', '.join(SETTINGS_VALID)})")
        if not valid(value):
            raise OperationError("BadRequest", 400, f"invalid value for setting `{name}`: {json_text(value)}")


async def settings_put(request: web.Request) -> web.Response:
    body = await body_of(request)
    settings_check(body)
    step = bool(body.pop("step")) if "step" in body else None
    settings, version = await request.app[COORDINATOR].settings_update(body, step)
    return reply(settings, version)


async def step_continue(request: web.Request) -> web.Response:
    return reply(True, request.app[COORDINATOR].step_release())


async def collection_create(request: web.Request) -> web.Response:
    config = (await body_of(request))["config"]
    return reply(True, await request.app[COORDINATOR].collection_create(request.match_info["collection"], config))


async def collection_delete(request: web.Request) -> web.Response:
    return reply(True, await request.app[COORDINATOR].collection_delete(request.match_info["collection"]))


async def collection_operation(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    name = request.match_info["collection"]
    body = await body_of(request)
    operations.collection_get(coordinator.state, name)
    if "move_shard" in body or "replicate_shard" in body:
        sync = "replicate_shard" in body
        operation = body["replicate_shard" if sync else "move_shard"]
        return reply(True, await coordinator.transfers.begin(name, operation, sync=sync, reason="user"))
    if "abort_transfer" in body:
        return reply(True, await coordinator.transfers.abort_requested(name, body["abort_transfer"]))
    if "drop_replica" in body:
        return reply(True, await coordinator.replica_drop(name, body["drop_replica"]))
    raise OperationError("FormatError", 400, f"Format error in JSON body: unknown cluster operation "
                         f"{sorted(body)} (expected move_shard, replicate_shard, abort_transfer or "
                         f"drop_replica)")


async def payload_index(request: web.Request) -> web.Response:
    body = await body_of(request)
    schema = body.get("field_schema") if request.method == "PUT" else None
    version = await request.app[COORDINATOR].payload_index_set(request.match_info["collection"],
                                                               str(body["field_name"]), schema)
    return reply(True, version)


async def replica_failed(request: web.Request) -> web.Response:
    body = await body_of(request)
    changed, version = await request.app[COORDINATOR].transfers.replica_failed(
        body["collection"], int(body["shard"]), int(body["peer"]), str(body.get("reason", "")),
        body.get("reporter"))
    return reply(changed, version)


TRANSFER_REPORT_FIELDS = ("phase", "bytes", "bytes_total", "attempt", "queued")


async def transfer_step(request: web.Request) -> web.Response:
    """The source node reports a step of a transfer it drives; the coordinator records and publishes it."""
    body = await body_of(request)
    key = TransferKey.of(body)
    fields = {k: body[k] for k in TRANSFER_REPORT_FIELDS if k in body}
    reason = str(body["reason"]) if "reason" in body else None
    version = await request.app[COORDINATOR].transfers.report(request.match_info["step"], key, fields, reason)
    return reply(True, version)


async def recovery_step(request: web.Request) -> web.Response:
    """Collection or shard snapshot recovery on a peer: ManualRecovery, then the priority rules."""
    coordinator = request.app[COORDINATOR]
    step = request.match_info["step"]
    body = await body_of(request)
    name, peer, shards = str(body["collection"]), int(body["peer"]), [int(s) for s in body["shards"]]
    previous = {int(k): None if v is None else str(v) for k, v in body.get("previous", {}).items()}
    if step == "begin":
        added = [int(s) for s in body.get("added", [])]
        begun, version = await coordinator.recovery_begin(name, shards, peer, added)
        return reply({str(k): v for k, v in begun.items()}, version)
    if step == "abort":
        reason = str(body.get("reason", "recovery failed"))
        return reply(True, await coordinator.recovery_abort(name, previous, peer, reason))
    given = str(body["priority"]) if body.get("priority") else None
    chosen = await coordinator.recovery_finish(name, peer, shards, previous, given, str(body.get("kind", "shard")))
    return reply({"priority": chosen, "time": clock.now()}, coordinator.state.version)


def app_build(coordinator: Coordinator) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=BODY_BYTES_MAX)
    app[COORDINATOR] = coordinator
    app[API_KEYS] = api_keys(coordinator.settings.api_key, coordinator.settings.alt_api_key)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with coordinator.running():
            yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
    app.router.add_get("/internal/state", state_get)
    app.router.add_put("/internal/topology", topology_put)
    app.router.add_post("/internal/peers", peer_register)
    app.router.add_get("/internal/peers", peers_get)
    app.router.add_delete("/internal/peers/{peer_id}", peer_remove)
    app.router.add_put("/internal/settings", settings_put)
    app.router.add_post("/internal/step/continue", step_continue)
    app.router.add_post("/internal/collections/{collection}", collection_create)
    app.router.add_delete("/internal/collections/{collection}", collection_delete)
    app.router.add_post("/internal/collections/{collection}/cluster", collection_operation)
    app.router.add_put("/internal/collections/{collection}/index", payload_index)
    app.router.add_delete("/internal/collections/{collection}/index", payload_index)
    app.router.add_post("/internal/replicas/failed", replica_failed)
    app.router.add_post("/internal/transfers/{step}", transfer_step)
    app.router.add_post("/internal/recovery/{step}", recovery_step)
    return app
