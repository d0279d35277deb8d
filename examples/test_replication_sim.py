"""The same case as test_replication.py, in simulation, over twenty seeds (Python 3.12+ and `.[sim]`).

Each seed is a different schedule of the same code (another interleaving of the nodes, other network
latencies); a failing seed replays exactly. The README shows this file.
"""

import aiohttp
import pytest

from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active


async def isolated_replica_is_recovered(cluster, nemesis):
    n1 = cluster.node_url("n1")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
        await client.put(f"{n1}/collections/docs", json={
            "vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3})
        await wait_replicas_active(cluster, "docs")

        isolation = await nemesis.isolate("n3")
        points = [{"id": i, "vector": [i, 0, 0, 1], "payload": {"i": i}} for i in range(50)]
        response = await client.put(f"{n1}/collections/docs/points?wait=true", json={"points": points})
        assert response.status == 200
        await isolation.heal()

    await wait_replicas_active(cluster, "docs")
    assert digests_equal(await replica_digests(cluster, "docs"))


@pytest.mark.parametrize("seed", range(1, 21))
def test_isolated_replica_is_recovered_in_simulation(shardsim_sim, seed):
    shardsim_sim(isolated_replica_is_recovered, seed=seed, nodes=3)
