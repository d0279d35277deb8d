"""An update routed by an outdated state is refused by a replica whose state is newer, and routed again.

Found by the explorer (scenarios/found/stale_routing_missed_write.py): a node that could not hear the
coordinator still saw its own replica in Recovery after the coordinator had made it Active, routed a client
write to the other replica only, and acknowledged it; its Active replica missed the write for good. A
forwarded update now names the state version and the replicas it was routed to (docs/cluster.md, section 4);
the whole path is replayed by that found scenario (tests/explore/test_found.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgpack

from cluster.launcher import Cluster
from node.protocol import MSGPACK_CONTENT_TYPE, shard_replicas, vector_pack
from tests.cluster.helpers import ClusterApi

VERSION = 1 << 40


async def internal_apply(cluster: Cluster, node: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=cluster.headers) as session, session.post(
            cluster.node_url(node) + "/internal/collections/c/shards/0/apply", data=msgpack.packb(body),
            headers={"Content-Type": MSGPACK_CONTENT_TYPE}, timeout=aiohttp.ClientTimeout(total=10)) as response:
        raw = await response.read()
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, msgpack.unpackb(raw, strict_map_key=False)


def upsert_of(point_id: int) -> list[Any]:
    return ["upsert", VERSION, [[point_id, vector_pack([1.0, 2.0, 3.0, 4.0]), {}]]]


async def test_an_update_routed_by_an_older_state_is_refused_and_nothing_applied(
        cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    state = await api.state()
    peers = sorted(shard_replicas(state, "c", 0))
    receiver, left_out = cluster.name_of(peers[0]), peers[1]
    older = int(state["version"]) - 1
    # routed by an older state that left the second replica out: refused, naming it, nothing applied
    status, reply = await internal_apply(cluster, receiver, {"ops": [upsert_of(1)], "durable": True,
                                                             "state_version": older, "targets": [peers[0]]})
    assert (status, reply) == (200, {"stale": [left_out]})
    assert await api.count(receiver, "c") == 0
    # the same older state, but every replica taking updates was in the routing: applied
    status, reply = await internal_apply(cluster, receiver, {"ops": [upsert_of(2)], "durable": True,
                                                             "state_version": older, "targets": peers})
    assert status == 200 and "seq" in reply
    # a transfer's replay names no routing: applied as before
    status, reply = await internal_apply(cluster, receiver, {"ops": [upsert_of(3)], "durable": True})
    assert status == 200 and "seq" in reply
    # malformed routing: 400 in the envelope, nothing applied
    status, reply = await internal_apply(cluster, receiver, {"ops": [upsert_of(4)], "durable": True,
                                                             "state_version": "old", "targets": peers})
    assert status == 400 and "state_version" in reply["status"]["error"]
    ids = await api.retrieve_ids(cluster.name_of(peers[0]), "c", [1, 2, 3, 4])
    assert ids == {2, 3}

