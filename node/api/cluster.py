"""Qdrant's cluster routes: `GET /cluster`, `GET /collections/{c}/cluster`, `POST /collections/{c}/cluster`,
`POST /cluster/recover`, `DELETE /cluster/peer/{peer_id}`.

On a standalone node they answer as Qdrant does without distributed mode (status `disabled`, and 405
`Qdrant is running in standalone mode` for cluster operations); on a clustered node the cluster agent
answers from the pushed cluster state and forwards operations to the coordinator. A clustered node has no
Raft log of its own to recover (`/cluster/recover` answers true), and peers are not removed by request.
"""

from __future__ import annotations

from aiohttp import web

from node.api.keys import node_of
from node.api.responses import json_body, ok, path_int, query_float
from node.errors import BadRequest, standalone_mode
from node.protocol import ReplicaState


async def cluster_status(request: web.Request) -> web.Response:
    node = node_of(request)
    if node.cluster is None:
        return ok(request, {"status": "disabled"})
    return ok(request, node.cluster.cluster_status())


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
    if node_of(request).cluster is None:
        raise standalone_mode()
    return ok(request, True)


async def peer_remove(request: web.Request) -> web.Response:
    peer_id = path_int(request, "peer_id")
    if node_of(request).cluster is None:
        raise standalone_mode()
    raise BadRequest(f"Cannot remove peer {peer_id}: shardsim does not remove peers by request")


def routes_add(router: web.UrlDispatcher) -> None:
    router.add_get("/cluster", cluster_status)
    router.add_get("/collections/{collection}/cluster", collection_cluster_info)
    router.add_post("/collections/{collection}/cluster", collection_cluster_update)
    router.add_post("/cluster/recover", cluster_recover)
    router.add_delete("/cluster/peer/{peer_id}", peer_remove)
