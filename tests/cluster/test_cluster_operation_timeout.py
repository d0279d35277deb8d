"""`POST /collections/{c}/cluster?timeout=N`: how long the node waits for the operation to be applied.

Qdrant's meaning (docs/qdrant-semantics.md section 5): past the timeout the
request answers a service error, and the operation is not withdrawn. The coordinator's step mode holds every
change until someone says continue, which makes an operation that cannot be applied in time.
"""

from __future__ import annotations

import asyncio

from cluster.launcher import Cluster
from node.retry import wait_until
from tests.cluster.helpers import ClusterApi, replica_map, wait_converged


async def test_a_cluster_operation_waits_no_longer_than_its_timeout(cluster: Cluster,
                                                                    api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await wait_converged(api, "c", replicas_per_shard=2)
    dropped, kept = sorted(replica_map(await api.state(), "c")[0])
    loop = asyncio.get_running_loop()
    await api.settings_set(step=True)
    try:
        started_s = loop.time()
        status, reply = await api.call("n1", "POST", "/collections/c/cluster?timeout=1",
                                       {"drop_replica": {"shard_id": 0, "peer_id": dropped}})
        waited_s = loop.time() - started_s
        assert status == 500, reply
        error = reply["status"]["error"]
        assert error.startswith("Service internal error: Waiting for the cluster operation"), error
        assert 1.0 <= waited_s < 10.0, f"answered after {waited_s:.2f} s, not after the 1 s timeout"
        assert replica_map(await api.state(), "c") == {0: {dropped: "Active", kept: "Active"}}
    finally:
        await api.settings_set(step=False)

    async def dropped_now() -> bool:
        return replica_map(await api.state(), "c") == {0: {kept: "Active"}}

    await wait_until(dropped_now, timeout_s=10, what="the held drop_replica to be applied after all")
