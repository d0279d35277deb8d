"""The nemesis on a real cluster: each fault acts on real processes and sockets, and each handle undoes it.

Issue 5's "faults in the cluster": a partition during a transfer makes it fail, retry and abort by the rules,
and after `heal_all()` automatic recovery finishes with equal digests; a bandwidth limit slows a transfer
measurably; a paused source mid-transfer, then resumed; an isolated replica during writes becomes Dead and
recovers after healing with no acknowledged write lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio

from cluster.history import HistoryWriter
from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active
from cluster.runner.events import EventPump

VECTOR_SIZE = 64


@pytest_asyncio.fixture
async def three(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Nemesis, aiohttp.ClientSession]]:
    async with Cluster(nodes=3, run_dir=tmp_path / "cluster") as cluster, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        nemesis = Nemesis(cluster, cluster.events)
        try:
            yield cluster, nemesis, session
        finally:
            await nemesis.heal_all()


async def collection_create(session: aiohttp.ClientSession, cluster: Cluster, shards: int, replicas: int) -> None:
    body = {"vectors": {"size": VECTOR_SIZE, "distance": "Dot"}, "shard_number": shards,
            "replication_factor": replicas}
    async with session.put(f"{cluster.node_url('n1')}/collections/c", json=body) as response:
        assert response.status == 200, await response.text()
    await wait_replicas_active(cluster, "c")


async def upsert(session: aiohttp.ClientSession, url: str, ids: range) -> int:
    """Upsert the ids in batches of 500 (bodies stay under 1 MB); the last non-200 status, else 200."""
    status = 200
    for start in range(ids.start, ids.stop, 500):
        points = [{"id": i, "vector": [float(i % 7)] * VECTOR_SIZE, "payload": {"i": i, "pad": "x" * 200}}
                  for i in range(start, min(start + 500, ids.stop))]
        try:
            async with session.put(f"{url}/collections/c/points?wait=true", json={"points": points},
                                   timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
    return status


async def holders(session: aiohttp.ClientSession, cluster: Cluster, shard: int = 0) -> tuple[str, str]:
    """(a node holding the shard, a node that does not)."""
    async with session.get(f"{cluster.node_url('n1')}/collections/c/cluster") as response:
        info = (await response.json())["result"]
    peers = {s["peer_id"] for s in info["remote_shards"] if s["shard_id"] == shard}
    peers |= {info["peer_id"] for s in info["local_shards"] if s["shard_id"] == shard}
    source = cluster.name_of(min(peers))
    target = next(n for n in cluster.node_names() if cluster.peer_id(n) not in peers)
    return source, target


async def replicate(session: aiohttp.ClientSession, cluster: Cluster, source: str, target: str) -> None:
    body = {"replicate_shard": {"shard_id": 0, "from_peer_id": cluster.peer_id(source),
                                "to_peer_id": cluster.peer_id(target)}}
    async with session.post(f"{cluster.node_url(source)}/collections/c/cluster", json=body) as response:
        assert response.status == 200, await response.text()


async def transfers(session: aiohttp.ClientSession, cluster: Cluster) -> list[dict[str, Any]]:
    async with session.get(f"{cluster.node_url('n1')}/collections/c/cluster") as response:
        return list((await response.json())["result"]["shard_transfers"])


async def wait_no_transfer(session: aiohttp.ClientSession, cluster: Cluster, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not await transfers(session, cluster):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"transfer still running after {timeout_s} s")


async def test_partition_during_transfer_fails_retries_aborts_then_auto_recovery_heals(
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession], tmp_path: Path) -> None:
    cluster, nemesis, session = three
    await collection_create(session, cluster, shards=1, replicas=1)
    assert await upsert(session, cluster.node_url("n1"), range(2000)) == 200
    source, target = await holders(session, cluster)
    with HistoryWriter(tmp_path / "history.jsonl") as history:
        async with EventPump(str(cluster.mqtt_url), cluster.cluster_name, history) as pump:
            await nemesis.partition([[source], [target]])
            await replicate(session, cluster, source, target)
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
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession]) -> None:
    cluster, nemesis, session = three
    await collection_create(session, cluster, shards=1, replicas=1)
    assert await upsert(session, cluster.node_url("n1"), range(3000)) == 200   # about 1.5 MB of snapshot
    source, target = await holders(session, cluster)
    await replicate(session, cluster, source, target)
    free_s = await wait_no_transfer(session, cluster, 30)
    async with session.post(f"{cluster.node_url(source)}/collections/c/cluster", json={"drop_replica": {
            "shard_id": 0, "peer_id": cluster.peer_id(target)}}) as response:
        assert response.status == 200
    limit = await nemesis.bandwidth(target, source, kb_s=500)
    await replicate(session, cluster, source, target)
    limited_s = await wait_no_transfer(session, cluster, 60)
    await limit.heal()
    assert limited_s > 1.5 and limited_s > 3 * free_s, (free_s, limited_s)
    assert digests_equal(await replica_digests(cluster, "c"))


async def test_paused_source_mid_transfer_then_resumed_converges(
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession]) -> None:
    cluster, nemesis, session = three
    await collection_create(session, cluster, shards=1, replicas=1)
    assert await upsert(session, cluster.node_url("n1"), range(3000)) == 200
    source, target = await holders(session, cluster)
    slow = await nemesis.bandwidth(target, source, kb_s=600)
    await replicate(session, cluster, source, target)
    await asyncio.sleep(0.8)
    assert await transfers(session, cluster), "the transfer should still be streaming"
    paused = await nemesis.node_pause(source)
    await asyncio.sleep(2.0)
    await paused.heal()
    await slow.heal()
    await wait_no_transfer(session, cluster, 60)
    await wait_replicas_active(cluster, "c")
    digests = await replica_digests(cluster, "c")
    assert digests_equal(digests)


async def test_isolated_replica_during_writes_goes_dead_and_recovers_without_losing_writes(
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession]) -> None:
    cluster, nemesis, session = three
    await collection_create(session, cluster, shards=2, replicas=3)
    acknowledged: list[int] = []
    isolation = await nemesis.isolate("n3")
    for start in range(0, 400, 20):
        node = cluster.node_url("n1" if start % 40 else "n2")
        if await upsert(session, node, range(start, start + 20)) == 200:
            acknowledged.extend(range(start, start + 20))
    async with session.get(f"{cluster.node_url('n1')}/collections/c/cluster") as response:
        states = {(s["shard_id"], s["peer_id"]): s["state"] for s in (await response.json())["result"]["remote_shards"]}
    assert {states[(0, 3)], states[(1, 3)]} == {"Dead"}
    await isolation.heal()
    await wait_replicas_active(cluster, "c")
    assert digests_equal(await replica_digests(cluster, "c"))
    assert len(acknowledged) >= 300
    async with session.post(f"{cluster.node_url('n3')}/collections/c/points",
                            json={"ids": acknowledged, "with_payload": False}) as response:
        found = {p["id"] for p in (await response.json())["result"]}
    assert found == set(acknowledged)


async def test_every_fault_has_an_inverse_and_one_way_faults_stay_one_way(
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession]) -> None:
    cluster, nemesis, session = three
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
        three: tuple[Cluster, Nemesis, aiohttp.ClientSession]) -> None:
    cluster, nemesis, _session = three
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
