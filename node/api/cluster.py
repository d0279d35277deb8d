"""Qdrant's cluster routes: `GET /cluster`, `GET /cluster/telemetry`, `GET /collections/{c}/cluster`,
`POST /collections/{c}/cluster`, `POST /cluster/recover`, `DELETE /cluster/peer/{peer_id}`.

On a standalone node they answer as Qdrant does without distributed mode (status `disabled`, and 405
`Qdrant is running in standalone mode` for cluster operations); on a clustered node the cluster agent
answers from the cluster state and forwards operations to the coordinator. shardsim has no Raft: `GET
/cluster` maps the coordinator's state onto Qdrant's `raft_info` (docs/cluster.md section 3), and
`POST /cluster/recover`, Qdrant's "ask the leader for a consensus snapshot", pulls the whole state from the
coordinator.
"""

from __future__ import annotations

from aiohttp import web

from node.api.keys import node_of
from node.api.responses import json_body, ok, path_int, query_bool, query_float
from node.errors import FormatError, standalone_mode
from node.protocol import ReplicaState

TELEMETRY_DETAILS_LEVEL_MIN = 2  # Qdrant answers cluster telemetry at this level of detail or more


async def cluster_status(request: web.Request) -> web.Response:
    node = node_of(request)
    if node.cluster is None:
        return ok(request, {"status": "disabled"})
    return ok(request, await node.cluster.cluster_status())


async def cluster_telemetry(request: web.Request) -> web.Response:
    """Qdrant's distributed telemetry, with what shardsim knows: peers (with health and applied state
    version), collections with their shards' replicas (points counted for this node's replicas) and transfers
    (with their stage comments)."""
    node = node_of(request)
    level = query_float(request, "details_level")
    if level is not None and (level < 0 or level != int(level)):
        raise FormatError("Deserialize error in query parameters: details_level: invalid digit found in string")
    if node.cluster is None:
        raise standalone_mode()
    details_level = max(int(level or 0), TELEMETRY_DETAILS_LEVEL_MIN)
    return ok(request, await node.cluster.cluster_telemetry(details_level))


async def collection_cluster_info(request: web.Request) -> web.Response:
    node = node_of(request)
    collection = node.storage.get(request.match_info["collection"])
    if node.cluster is None:
        local = [{"shard_id": shard_id, "points_count": len(shard.points), "state": ReplicaState.ACTIVE.value}
                 for shard_id, shard in sorted(collection.shards.items())]
        return ok(request, {"peer_id": node.peer_id, "shard_count": collection.shard_number,
                            "local_shards": local, "remote_shards": [], "shard_transfers": []})
    return ok(request, await node.cluster.collection_cluster_info(collection))


async def collection_cluster_update(request: web.Request) -> web.Response:
    node = node_of(request)
    body = await json_body(request)
    timeout_s = query_float(request, "timeout")
    if node.cluster is None:
        raise standalone_mode()
    collection = node.storage.get(request.match_info["collection"])
    return ok(request, await node.cluster.collection_operation(collection, body, timeout_s))


async def cluster_recover(request: web.Request) -> web.Response:
    """Qdrant asks the Raft leader for a snapshot of the consensus state; a shardsim node pulls the whole
    cluster state from the coordinator and applies it."""
    node = node_of(request)
    if node.cluster is None:
        raise standalone_mode()
    await node.cluster.recover()
    return ok(request, True)


async def peer_remove(request: web.Request) -> web.Response:
    """Remove a peer from the cluster: refused (400) while it holds a replica, unless `force=true`, which drops
    its replicas; `true` once this node applied the new state."""
    peer_id = path_int(request, "peer_id")
    force = query_bool(request, "force", False)
    timeout_s = query_float(request, "timeout")
    node = node_of(request)
    if node.cluster is None:
        raise standalone_mode()
    await node.cluster.peer_remove(peer_id, force, timeout_s)
    return ok(request, True)


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_get("/cluster", cluster_status)
    router.add_get("/cluster/telemetry", cluster_telemetry)
    router.add_get("/collections/{collection}/cluster", collection_cluster_info)
    router.add_post("/collections/{collection}/cluster", collection_cluster_update)
    router.add_post("/cluster/recover", cluster_recover)
    router.add_delete("/cluster/peer/{peer_id}", peer_remove)
