"""An example of using shardsim's pytest plugin in your own suite (the README shows this file)."""

import pytest

from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active


@pytest.mark.shardsim(nodes=3)
async def test_isolated_replica_is_recovered(cluster, nemesis, shardsim_client):
    n1 = cluster.node_url("n1")
    await shardsim_client.put(f"{n1}/collections/docs", json={
        "vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3})
    await wait_replicas_active(cluster, "docs")

    isolation = await nemesis.isolate("n3")          # every link to and from n3 is cut
    points = [{"id": i, "vector": [i, 0, 0, 1], "payload": {"i": i}} for i in range(50)]
    response = await shardsim_client.put(f"{n1}/collections/docs/points?wait=true", json={"points": points})
    assert response.status == 200                   # acknowledged by n1 and n2
    await isolation.heal()

    await wait_replicas_active(cluster, "docs")     # n3 was marked Dead, then re-synced
    assert digests_equal(await replica_digests(cluster, "docs"))
