"""A whole cluster with an API key: its own traffic carries the key, everyone else is refused (issue 14 item 5).

Every process is started with `--api-key` (the launcher's `api_key` option): the nodes and the coordinator
refuse any call without it (node/apikey.py), so a shard move, an automatic recovery, the coordinator's
pushes and health checks, the nodes' reports, and the test helpers' own calls (`ClusterApi`, the pytest
plugin's `wait_replicas_active`) all work only if each of them sends the key.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from cluster.pytest_plugin import wait_replicas_active
from node.apikey import MISSING
from node.retry import wait_until
from tests.cluster.helpers import ClusterApi, Writer, cluster_started, digests_of, replica_map, wait_converged
from tests.helpers import points_make

KEY = "cluster-s3cret"


async def test_a_keyed_cluster_moves_and_recovers_shards_and_refuses_strangers(tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "run", nodes=3, api_key=KEY) as cluster, ClusterApi(cluster) as api:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as stranger:
            for url in (f"{cluster.node_url('n1')}/collections", f"{cluster.coordinator_url}/internal/state",
                        f"{cluster.node_url('n2')}/internal/digests"):
                async with stranger.get(url) as response:
                    assert (response.status, (await response.json())["status"]) == (401, {"error": MISSING}), url

        await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
        await wait_replicas_active(cluster, "c", replicas_per_shard=2)
        await api.upsert_ok("n1", "c", points_make(range(300)))
        holders = sorted(replica_map(await api.state(), "c")[0])
        spare = ({1, 2, 3} - set(holders)).pop()
        status, reply = await api.cluster_operation("n1", "c", {"move_shard": {
            "shard_id": 0, "from_peer_id": holders[0], "to_peer_id": spare}})
        assert status == 200, reply
        await wait_replicas_active(cluster, "c", replicas_per_shard=2)
        moved = replica_map(await api.state(), "c")[0]
        assert sorted(moved) == sorted([holders[1], spare]), moved
        await wait_converged(api, "c", replicas_per_shard=2)

        victim = cluster.name_of(spare)
        writers = [cluster.name_of(holders[1])]
        await cluster.node_kill(victim)
        async with Writer(api, "c", writers) as writer:
            async def victim_dead() -> bool:
                return replica_map(await api.state(), "c")[0].get(spare) == "Dead"
            await wait_until(victim_dead, 20.0, what=f"{victim}'s replica marked Dead")
            await writer.wait_acked(100)
            await cluster.node_restart(victim)
        digests = await wait_converged(api, "c", replicas_per_shard=2, timeout_s=60.0)
        recovered = (await digests_of(api, [victim]))[victim]["c"]["0"]
        assert recovered["digest"] == digests[0]
        assert recovered["points_count"] == 300 + len(writer.acked)
        assert not writer.refused, writer.statuses


async def test_a_client_with_the_alternative_key_moves_shards_through_any_node(tmp_path: Path) -> None:
    """Qdrant's key rotation (`service.alt_api_key`): `Cluster(alt_api_key=...)` starts every process with
    both keys, and a client holding only the alternative one runs a whole transfer; a wrong key still gets 401."""
    alt_key = "cluster-rotated"
    async with cluster_started(tmp_path / "run", nodes=3, api_key=KEY, alt_api_key=alt_key) as cluster, \
            ClusterApi(cluster) as api:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         headers={"api-key": alt_key}) as client:
            async def call(node: str, method: str, path: str, body: object = None) -> object:
                async with client.request(method, cluster.node_url(node) + path, json=body) as response:
                    reply = await response.json()
                    assert response.status == 200, (method, path, reply)
                    return reply["result"]
            await call("n1", "PUT", "/collections/c", {"vectors": {"size": 4, "distance": "Dot"},
                                                       "shard_number": 1, "replication_factor": 1})
            await call("n2", "PUT", "/collections/c/points?wait=true", {"points": points_make(range(200))})
            holder = next(iter(replica_map(await api.state(), "c")[0]))
            target = holder % 3 + 1
            await call("n3", "POST", "/collections/c/cluster", {"replicate_shard": {
                "shard_id": 0, "from_peer_id": holder, "to_peer_id": target}})
            await wait_converged(api, "c", replicas_per_shard=2)
            assert {node: (await call(node, "POST", "/collections/c/points/count", {"exact": True}))  # type: ignore[index]
                    ["count"] for node in ("n1", "n2", "n3")} == {"n1": 200, "n2": 200, "n3": 200}
            async with client.get(f"{cluster.coordinator_url}/internal/state") as response:
                assert response.status == 200
            async with client.get(cluster.node_url("n1") + "/collections", headers={"api-key": "wrong"}) as refused:
                assert refused.status == 401
