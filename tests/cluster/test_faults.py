"""The nemesis on a real cluster: each fault acts on real processes and sockets, and each handle undoes it.

Issue 5's "faults in the cluster": a partition during a transfer makes it fail, retry and abort by the rules,
and after `heal_all()` automatic recovery finishes with equal digests; a bandwidth limit slows a transfer
measurably; a paused source mid-transfer, then resumed; an isolated replica during writes becomes Dead and
recovers after healing with no acknowledged write lost. The cluster is tests/cluster/conftest.py's, the
`nemesis` the pytest plugin's (every fault still in force is healed after the test).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from cluster.history import HistoryWriter
from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active
from cluster.runner.events import EventPump
from node.retry import wait_until
from tests.cluster.helpers import ClusterApi, replica_map, transfer_operation, transfers_of, wait_streaming
from tests.helpers import points_make

VECTOR_SIZE = 64
PAYLOAD_PAD = "x" * 200  # with the vector, about 500 bytes a point: 3000 points stream about 1.5 MB
UPSERT_BATCH = 500  # bodies stay under 1 MB
UPSERT_TIMEOUT = aiohttp.ClientTimeout(total=10)
SOURCE_PAUSED_S = 2.0


async def collection_create(api: ClusterApi, shards: int, replicas: int) -> None:
    await api.collection_create("n1", "c", shard_number=shards, replication_factor=replicas, size=VECTOR_SIZE)
    await wait_replicas_active(api.cluster, "c")


async def upsert(api: ClusterApi, node: str, ids: range) -> int:
    """Upsert the ids in batches; the last status that was not 200 (0: no answer), else 200."""
    status = 200
    for start in range(ids.start, ids.stop, UPSERT_BATCH):
        points = points_make(range(start, min(start + UPSERT_BATCH, ids.stop)), size=VECTOR_SIZE)
        for point in points:
            point["payload"]["pad"] = PAYLOAD_PAD
        try:
            answered, _ = await api.upsert(node, "c", points, timeout=UPSERT_TIMEOUT)
        except (aiohttp.ClientError, TimeoutError):
            answered = 0
        if answered != 200:
            status = answered
    return status


async def holders(api: ClusterApi, shard: int = 0) -> tuple[str, str]:
    """(a node holding the shard, a node that does not)."""
    peers = replica_map(await api.state(), "c")[shard]
    cluster = api.cluster
    return cluster.name_of(min(peers)), next(n for n in cluster.node_names() if cluster.peer_id(n) not in peers)


async def replicate(api: ClusterApi, source: str, target: str) -> None:
    await api.ok(source, "POST", "/collections/c/cluster", transfer_operation(
        "replicate_shard", api.cluster.peer_id(source), api.cluster.peer_id(target)))


async def wait_no_transfer(api: ClusterApi, timeout_s: float) -> float:
    """Wait until the coordinator holds no transfer of `c`; returns how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def idle() -> bool:
        return not transfers_of(await api.state(), "c")
    await wait_until(idle, timeout_s, 0.05, what="the transfer of c to end")
    return loop.time() - started


async def test_partition_during_transfer_fails_retries_aborts_then_auto_recovery_heals(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis, tmp_path: Path) -> None:
    await collection_create(api, shards=1, replicas=1)
    assert await upsert(api, "n1", range(2000)) == 200
    source, target = await holders(api)
    with HistoryWriter(tmp_path / "history.jsonl") as history:
        async with EventPump(str(cluster.mqtt_url), cluster.cluster_name, history) as pump:
            await nemesis.partition([[source], [target]])
            await replicate(api, source, target)
            aborted = await pump.wait_event(lambda e: e.get("kind") == "transfer.aborted", 30)
            failures = [e for e in pump.events if e.get("kind") == "transfer.phase" and e.get("phase") == "attempt_failed"]
            assert [e["attempt"] for e in failures] == [1, 2, 3]
            assert "transmission failed after 3 attempts" in aborted["reason"]
            dead = [e for e in pump.events if e.get("kind") == "replica.state" and e.get("to") == "Dead"]
            assert dead and dead[-1]["peer"] == cluster.peer_id(target)
            await nemesis.heal_all()
            await pump.wait_event(lambda e: e.get("kind") == "transfer.finished", 30)
    await wait_replicas_active(cluster, "c")
    digests = await replica_digests(cluster, "c")
    assert len(digests[0]) == 2 and digests_equal(digests)


async def test_bandwidth_limit_slows_a_transfer_measurably(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis) -> None:
    await collection_create(api, shards=1, replicas=1)
    assert await upsert(api, "n1", range(3000)) == 200   # about 1.5 MB of snapshot
    source, target = await holders(api)
    await replicate(api, source, target)
    free_s = await wait_no_transfer(api, 30)
    await api.ok(source, "POST", "/collections/c/cluster", {"drop_replica": {
        "shard_id": 0, "peer_id": cluster.peer_id(target)}})
    limit = await nemesis.bandwidth(target, source, kb_s=500)
    await replicate(api, source, target)
    limited_s = await wait_no_transfer(api, 60)
    await limit.heal()
    assert limited_s > 1.5 and limited_s > 3 * free_s, (free_s, limited_s)
    assert digests_equal(await replica_digests(cluster, "c"))


async def test_paused_source_mid_transfer_then_resumed_converges(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis) -> None:
    await collection_create(api, shards=1, replicas=1)
    assert await upsert(api, "n1", range(3000)) == 200
    source, target = await holders(api)
    slow = await nemesis.bandwidth(target, source, kb_s=600)
    await replicate(api, source, target)
    streaming = await wait_streaming(api, "c")  # registered, and part of the bytes streamed, not all
    assert (streaming["from"], streaming["to"]) == (cluster.peer_id(source), cluster.peer_id(target))
    paused = await nemesis.node_pause(source)
    await asyncio.sleep(SOURCE_PAUSED_S)  # the fault's duration: the source stays stopped mid-stream this long
    await paused.heal()
    await slow.heal()
    await wait_no_transfer(api, 60)
    await wait_replicas_active(cluster, "c")
    digests = await replica_digests(cluster, "c")
    assert digests_equal(digests)


async def test_isolated_replica_during_writes_goes_dead_and_recovers_without_losing_writes(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis) -> None:
    await collection_create(api, shards=2, replicas=3)
    acknowledged: list[int] = []
    isolation = await nemesis.isolate("n3")
    for start in range(0, 400, 20):
        node = "n1" if start % 40 else "n2"
        if await upsert(api, node, range(start, start + 20)) == 200:
            acknowledged.extend(range(start, start + 20))
    states = {(s["shard_id"], s["peer_id"]): s["state"] for s in (await api.cluster_info("n1", "c"))["remote_shards"]}
    assert {states[(0, 3)], states[(1, 3)]} == {"Dead"}
    await isolation.heal()
    await wait_replicas_active(cluster, "c")
    assert digests_equal(await replica_digests(cluster, "c"))
    assert len(acknowledged) >= 300
    assert await api.retrieve_ids("n3", "c", acknowledged) == set(acknowledged)


async def test_every_fault_has_an_inverse_and_one_way_faults_stay_one_way(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis) -> None:
    proxy = cluster.toxiproxy
    assert proxy is not None
    handles = [await nemesis.latency("n1", "n2", ms=50), await nemesis.bandwidth("n1", "n3", kb_s=100),
               await nemesis.cut_after("n2", "n3", 1000), await nemesis.reset("n3", "n1"),
               await nemesis.slice("n2", "n1")]
    assert [t["type"] for t in await proxy.toxics("n1->n2")] == ["latency"]
    assert await proxy.toxics("n2->n1") != [] and await proxy.toxics("n3->n2") == []   # one way only
    down = await nemesis.link_down("n1", "n2")
    assert (await proxy.proxy_get("n1->n2"))["enabled"] is False
    assert (await proxy.proxy_get("n2->n1"))["enabled"] is True
    part = await nemesis.partition([["n1"], ["n2", "n3"]])
    assert (await proxy.proxy_get("n3->n1"))["enabled"] is False
    assert (await proxy.proxy_get("n2->n3"))["enabled"] is True
    for handle in [*handles, down, part]:
        await handle.heal()
    for name in cluster.links:
        assert (await proxy.proxy_get(name))["enabled"] is True
        assert await proxy.toxics(name) == []
    killed = await nemesis.node_kill("n2")
    assert not cluster.node_alive("n2")
    await killed.heal()
    assert cluster.node_alive("n2")
    assert await nemesis.heal_all() == []


async def test_heal_all_undoes_everything_still_in_force(
        cluster: Cluster, api: ClusterApi, nemesis: Nemesis) -> None:
    await nemesis.isolate("n1")
    await nemesis.latency("n2", "n3", ms=10)
    await nemesis.node_pause("n3")
    healed = await nemesis.heal_all()
    assert len(healed) == 3 and not nemesis.active
    assert not cluster.node_paused("n3")
    proxy = cluster.toxiproxy
    assert proxy is not None
    for name in cluster.links:
        assert (await proxy.proxy_get(name))["enabled"] is True
