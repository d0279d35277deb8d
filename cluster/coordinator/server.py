"""The coordinator's HTTP API (JSON), used by nodes, the launcher and tests; never by Qdrant clients.

    GET  /readyz, GET /internal/state?peer_id&boot_id&version   (a node pulls its view; reports its boot)
    PUT  /internal/topology {peers, links}     POST /internal/peers {peer_id, name, address}
    PUT  /internal/settings {...}              POST /internal/step/continue
    POST /internal/collections/{c} {config}    DELETE /internal/collections/{c}
    POST /internal/collections/{c}/cluster {move_shard|replicate_shard|abort_transfer|drop_replica}
    POST /internal/replicas/failed {collection, shard, peer, reason, reporter}
    POST /internal/transfers/{progress|partial|finish|abort|attempt_failed} {collection, shard, from, to, ...}
    POST /internal/recovery/{begin|finish|abort} {collection, peer, shards, priority, kind}
Errors: `{"status": {"error": "..."}, "kind": "<node error kind>"}` with the HTTP status, so a node can
re-raise the same error to its client in Qdrant's words.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from cluster.coordinator import operations, priority
from cluster.coordinator.engine import Coordinator
from cluster.coordinator.operations import OperationError
from cluster.coordinator.state import ClusterState
from node.protocol import TransferKey

COORDINATOR = web.AppKey("coordinator", Coordinator)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(result: Any, version: int) -> web.Response:
    return web.json_response({"result": result, "version": version, "status": "ok"})


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OperationError as error:
        return web.json_response({"status": {"error": error.text()}, "kind": error.kind,
                                  "message": error.message}, status=error.status)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        return web.json_response({"status": {"error": f"Bad request: {type(error).__name__}: {error}"},
                                  "kind": "BadRequest"}, status=400)


async def body_of(request: web.Request) -> dict[str, Any]:
    value = await request.json()
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


async def readyz(request: web.Request) -> web.Response:
    return web.Response(text="coordinator ready")


async def state_get(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    peer = request.query.get("peer_id")
    peer_id = int(peer) if peer else None
    if peer_id is not None and request.query.get("boot_id"):
        await coordinator.peer_booted(peer_id, request.query["boot_id"])
    if peer_id is not None and request.query.get("version") and coordinator.pusher is not None:
        await coordinator.pusher.ack(peer_id, int(request.query["version"]))
    return web.json_response(coordinator.state.view_for(peer_id))


async def topology_put(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    body = await body_of(request)

    def apply(state: ClusterState) -> None:
        for peer in body.get("peers", []):
            state.peer_set(int(peer["peer_id"]), str(peer["name"]), str(peer["address"]))
        if "links" in body:
            state.links_set({str(k): str(v) for k, v in body["links"].items()})
    _, version = await coordinator.change(apply, wait_acks=False)
    return reply(True, version)


async def peer_register(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    body = await body_of(request)
    _, version = await coordinator.change(
        lambda s: s.peer_set(int(body["peer_id"]), str(body["name"]), str(body["address"])), wait_acks=False)
    return reply(True, version)


async def settings_put(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    body = await body_of(request)
    if "step" in body:
        coordinator.step_mode = bool(body.pop("step"))
        if not coordinator.step_mode:
            coordinator.step_continue.set()
    _, version = await coordinator.change(lambda s: s.data["settings"].update(body), wait_acks=False)
    return reply(coordinator.state.data["settings"], version)


async def step_continue(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    coordinator.step_continue.set()
    return reply(True, coordinator.state.version)


async def collection_create(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    name = request.match_info["collection"]
    config = (await body_of(request))["config"]
    _, version = await coordinator.change(lambda s: operations.collection_create(s, name, config))
    assert coordinator.pusher is not None
    ready = await coordinator.pusher.wait_acks(version, coordinator.state.peer_ids(),
                                               coordinator.settings.acks_timeout_s)
    _, version = await coordinator.change(lambda s: operations.collection_activate(s, name, ready))
    return reply(True, version)


async def collection_delete(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    name = request.match_info["collection"]

    def remove(state: ClusterState) -> None:
        operations.collection_get(state, name)
        state.collection_remove(name)
    _, version = await coordinator.change(remove)
    return reply(True, version)


async def collection_operation(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    name = request.match_info["collection"]
    body = await body_of(request)
    operations.collection_get(coordinator.state, name)
    if "move_shard" in body or "replicate_shard" in body:
        sync = "replicate_shard" in body
        operation = body["replicate_shard" if sync else "move_shard"]
        version = await coordinator.transfer_begin(name, operation, sync=sync, reason="user")
        return reply(True, version)
    if "abort_transfer" in body:
        operation = body["abort_transfer"]
        transfer = operations.transfer_get(coordinator.state, name, operation.get("shard_id"),
                                           operation.get("from_peer_id"), operation.get("to_peer_id"))
        await coordinator.transfer_abort_key(transfer, "aborted by user")
        return reply(True, coordinator.state.version)
    if "drop_replica" in body:
        _, version = await coordinator.change(lambda s: operations.replica_drop(s, name, body["drop_replica"]))
        return reply(True, version)
    raise OperationError("FormatError", 400, f"Format error in JSON body: unknown cluster operation "
                         f"{sorted(body)} (expected move_shard, replicate_shard, abort_transfer or "
                         f"drop_replica)")


async def replica_failed(request: web.Request) -> web.Response:
    coordinator = request.app[COORDINATOR]
    body = await body_of(request)
    before = list(coordinator.state.data["transfers"])
    changed, version = await coordinator.change(lambda s: operations.replica_failed(
        s, body["collection"], int(body["shard"]), int(body["peer"]), str(body.get("reason", "")),
        body.get("reporter")), wait_acks=False)
    remaining = {TransferKey.of(t) for t in coordinator.state.data["transfers"]}
    for transfer in before:
        if TransferKey.of(transfer) not in remaining:
            coordinator.transfer_event("transfer.aborted", transfer,
                                       reason=f"peer {body['peer']} failed an update")
            coordinator.recovery_backoff(transfer["collection"], transfer["shard_id"], transfer["to"])
    return reply(changed, version)


async def transfer_step(request: web.Request) -> web.Response:
    """The source node reports a step of a transfer it drives; the coordinator records and publishes it."""
    coordinator = request.app[COORDINATOR]
    step = request.match_info["step"]
    body = await body_of(request)
    key = TransferKey.of(body)
    transfer = coordinator.state.transfer_find(*key)
    if transfer is None:
        raise OperationError("NotFound", 404, f"Shard transfer {key.source} -> {key.target} of shard "
                             f"{key.shard} of collection {key.collection} does not exist")
    if step == "abort":
        await coordinator.transfer_abort_key(transfer, str(body.get("reason", "transfer failed")))
        return reply(True, coordinator.state.version)
    fields: dict[str, Any] = {k: body[k] for k in ("phase", "bytes", "bytes_total", "attempt", "queued") if k in body}
    if step == "progress":
        # Progress is not part of the versioned state: it changes many times a second while a stream runs,
        # and persisting and pushing each would cost every process CPU the stream needs. It is updated in
        # place, published, and read live by nodes answering cluster info; the next change carries it along.
        transfer.update(fields)
        transfer["comment"] = transfer_comment(transfer)
        coordinator.transfer_event("transfer.phase", dict(transfer))
        return reply(True, coordinator.state.version)

    def update(state: ClusterState) -> dict[str, Any]:
        current = state.transfer_find(*key)
        if current is None:
            raise OperationError("NotFound", 404, "transfer ended meanwhile")
        current.update(fields)
        current["comment"] = transfer_comment(current)
        if step == "partial":
            operations.transfer_partial(state, current)
        elif step == "finish":
            operations.transfer_finish(state, current)
        return dict(current)
    updated, version = await coordinator.change(update, wait_acks=False)
    kind = {"finish": "transfer.finished"}.get(step, "transfer.phase")
    extra = {"reason": body["reason"]} if "reason" in body else {}
    coordinator.transfer_event(kind, updated, **extra)  # right after its replica.state events, in order
    if step == "finish":
        coordinator.recovery_backoff_reset(key.collection, key.shard, key.target)
    if step in ("partial", "finish") and coordinator.pusher is not None:
        await coordinator.pusher.wait_acks(version, coordinator.state.peer_ids(),
                                           coordinator.settings.acks_timeout_s)
    return reply(True, version)


def transfer_comment(transfer: dict[str, Any]) -> str:
    total = transfer.get("bytes_total")
    done = transfer.get("bytes") or 0
    progress = f"{done}/{total} bytes ({100 * done // total}%)" if total else f"{done} bytes"
    return f"attempt {transfer.get('attempt', 1)}: {transfer.get('phase')}, {progress} streamed"


async def recovery_step(request: web.Request) -> web.Response:
    """Collection or shard snapshot recovery on a peer: ManualRecovery, then the priority rules."""
    coordinator = request.app[COORDINATOR]
    step = request.match_info["step"]
    body = await body_of(request)
    name, peer, shards = str(body["collection"]), int(body["peer"]), [int(s) for s in body["shards"]]
    if step == "begin":
        previous, version = await coordinator.change(lambda s: priority.recovery_begin(s, name, shards, peer))
        return reply({str(k): v for k, v in previous.items()}, version)
    if step == "abort":
        previous = {int(k): v for k, v in body.get("previous", {}).items()}
        _, version = await coordinator.change(lambda s: priority.recovery_restore(
            s, name, previous, peer, str(body.get("reason", "recovery failed"))))
        return reply(True, version)
    chosen = str(body.get("priority") or coordinator.state.data["settings"]["default_priority"])
    kind = body.get("kind", "shard")

    def finish(state: ClusterState) -> list[dict[str, Any]]:
        previous = {int(k): v for k, v in body.get("previous", {}).items()}
        skipped = {s: v for s, v in previous.items() if s not in shards}
        priority.recovery_restore(state, name, skipped, peer, "the snapshot has no data for this shard")
        transfers = []
        for shard in shards:
            if kind == "collection":
                transfer = priority.collection_shard_recovered(state, name, shard, peer, chosen)
                if transfer is not None:
                    transfers.append(transfer)
            else:
                priority.shard_recovered(state, name, shard, peer, chosen)
        return transfers
    transfers, version = await coordinator.change(finish)
    for transfer in transfers:
        coordinator.transfer_event("transfer.started", transfer)
        await coordinator.transfer_kick(transfer)
    return reply({"priority": chosen, "time": time.time()}, coordinator.state.version)


def app_build(coordinator: Coordinator) -> web.Application:
    app = web.Application(middlewares=[errors_middleware])
    app[COORDINATOR] = coordinator

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with coordinator.running():
            yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
    app.router.add_get("/internal/state", state_get)
    app.router.add_put("/internal/topology", topology_put)
    app.router.add_post("/internal/peers", peer_register)
    app.router.add_put("/internal/settings", settings_put)
    app.router.add_post("/internal/step/continue", step_continue)
    app.router.add_post("/internal/collections/{collection}", collection_create)
    app.router.add_delete("/internal/collections/{collection}", collection_delete)
    app.router.add_post("/internal/collections/{collection}/cluster", collection_operation)
    app.router.add_post("/internal/replicas/failed", replica_failed)
    app.router.add_post("/internal/transfers/{step}", transfer_step)
    app.router.add_post("/internal/recovery/{step}", recovery_step)
    return app
