"""The final observation `replica_differences` names the points on which Active replicas differ.

A write of unknown outcome can reach one replica and not another (the node that took it killed while it
forwarded it); replicas_converge accepts such a divergence only if every differing point was written by
such a write, so this observation must name exactly the points that differ, on real replicas.
"""

from __future__ import annotations

import aiohttp
import msgpack

from cluster.launcher import Cluster
from cluster.runner.observe import replica_differences, replicas_observe
from node.protocol import MSGPACK_CONTENT_TYPE, shard_replicas, vector_pack
from tests.cluster.helpers import ClusterApi
from tests.helpers import points_make

VERSION = (1 << 63) - 1  # newer than any write version the nodes give


async def test_the_points_that_differ_between_active_replicas_are_named(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "c", points_make(range(20)))
    state = await api.state()
    peers = sorted(shard_replicas(state, "c", 0))
    states = {"c": {0: {p: "Active" for p in peers}}}
    async with aiohttp.ClientSession(headers=cluster.headers) as session:
        replicas = await replicas_observe(session, cluster, ["c"], states)
        assert await replica_differences(session, cluster, replicas) == {}, "equal replicas: nothing observed"
        # one replica alone gets a new point 500 and another content for point 3, as a half-forwarded write
        operation = ["upsert", VERSION, [[500, vector_pack([1.0, 2.0, 3.0, 4.0]), {}],
                                         [3, vector_pack([9.0, 9.0, 9.0, 9.0]), {"x": 1}]]]
        async with session.post(cluster.node_url(cluster.name_of(peers[0])) + "/internal/collections/c/shards/0/apply",
                                data=msgpack.packb({"ops": [operation], "durable": True}),
                                headers={"Content-Type": MSGPACK_CONTENT_TYPE},
                                timeout=aiohttp.ClientTimeout(total=10)) as response:
            assert response.status == 200
        replicas = await replicas_observe(session, cluster, ["c"], states)
        assert await replica_differences(session, cluster, replicas) == {"c": {"0": ["3", "500"]}}
