"""Events from a real cluster, on both brokers: a transfer's whole ordered phase sequence, every replica state
change published, and a broker outage that never hurts writes or transfers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster
from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active
from tests.cluster.events.brokers import BrokerControl

PHASES_IN_ORDER = ["queue_installed", "streaming", "streamed", "restored", "queued", "partial",
                   "queue_replayed", "finished"]


async def collection_with_points(session: aiohttp.ClientSession, cluster: Cluster, count: int) -> None:
    body = {"vectors": {"size": 32, "distance": "Dot"}, "shard_number": 1, "replication_factor": 1}
    async with session.put(f"{cluster.node_url('n1')}/collections/c", json=body) as response:
        assert response.status == 200
    await wait_replicas_active(cluster, "c")
    for start in range(0, count, 500):
        points = [{"id": i, "vector": [float(i % 5)] * 32, "payload": {"i": i}} for i in range(start, start + 500)]
        async with session.put(f"{cluster.node_url('n2')}/collections/c/points?wait=true",
                               json={"points": points}) as response:
            assert response.status == 200


async def holder_and_free(session: aiohttp.ClientSession, cluster: Cluster) -> tuple[int, int]:
    async with session.get(f"{cluster.node_url('n1')}/collections/c/cluster") as response:
        info = (await response.json())["result"]
    holders = {s["peer_id"] for s in info["remote_shards"]} | ({info["peer_id"]} if info["local_shards"] else set())
    (holder,) = holders
    return holder, 3 - holder


async def replicate(session: aiohttp.ClientSession, cluster: Cluster, source: int, target: int) -> None:
    body = {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target}}
    async with session.post(f"{cluster.node_url('n1')}/collections/c/cluster", json=body) as response:
        assert response.status == 200, await response.text()


def fold_replica_states(events: list[dict[str, Any]]) -> dict[tuple[int, int], str]:
    """Replay `replica.state` events from nothing; every event's `from` must be the state before it."""
    states: dict[tuple[int, int], str] = {}
    for event in events:
        if event["kind"] != "replica.state" or event["collection"] != "c":
            continue
        key = (event["shard"], event["peer"])
        assert states.get(key) == event["from"], f"an unpublished change before {event}"
        if event["to"] is None:
            states.pop(key, None)
        else:
            states[key] = event["to"]
    return states


async def test_a_transfer_yields_its_whole_ordered_phase_sequence_and_every_state_change(
        broker: BrokerControl, tmp_path: Path) -> None:
    async with Cluster(nodes=2, run_dir=tmp_path / "cluster", mqtt_url=broker.url) as cluster, \
            Recorder(broker.url, cluster.cluster_name, tmp_path / "events.jsonl") as recorder, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await collection_with_points(session, cluster, 3000)
        source, target = await holder_and_free(session, cluster)
        await replicate(session, cluster, source, target)
        await recorder.wait_event(lambda e: e["kind"] == "transfer.finished", 30)
        info = await wait_replicas_active(cluster, "c")
        await asyncio.sleep(0.3)
        events = recorder.events
    transfer = [e for e in events if e["kind"].startswith("transfer.")]
    assert transfer[0]["kind"] == "transfer.started" and transfer[-1]["kind"] == "transfer.finished"
    phases = [e["phase"] for e in transfer[1:]]
    assert [p for p in dict.fromkeys(phases)] == PHASES_IN_ORDER, phases
    streamed = [e["bytes"] for e in transfer if e["phase"] in ("streaming", "streamed")]
    assert streamed == sorted(streamed) and streamed[-1] > 100_000
    assert all(e["attempt"] == 1 and e["from"] == source and e["to"] == target for e in transfer[1:])
    final = fold_replica_states(events)
    observed = {(s["shard_id"], s["peer_id"]): s["state"] for s in info["remote_shards"]}
    observed |= {(s["shard_id"], info["peer_id"]): s["state"] for s in info["local_shards"]}
    assert final == observed == {(0, source): "Active", (0, target): "Active"}


async def test_a_broker_outage_never_hurts_writes_or_transfers(amqtt_broker: BrokerControl, tmp_path: Path) -> None:
    broker = amqtt_broker
    async with Cluster(nodes=2, run_dir=tmp_path / "cluster", mqtt_url=broker.url) as cluster, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await collection_with_points(session, cluster, 1000)
        source, target = await holder_and_free(session, cluster)
        await broker.stop()
        started = asyncio.get_running_loop().time()
        await collection_with_points_more(session, cluster, 1000, 2000)
        await replicate(session, cluster, source, target)
        await wait_replicas_active(cluster, "c", timeout_s=30)
        assert asyncio.get_running_loop().time() - started < 20, "the outage slowed the cluster down"
        assert digests_equal(await replica_digests(cluster, "c"))
        await broker.start()
        async with Recorder(broker.url, cluster.cluster_name, tmp_path / "after.jsonl") as recorder:
            async with session.post(f"{cluster.node_url('n1')}/collections/c/cluster", json={
                    "drop_replica": {"shard_id": 0, "peer_id": target}}) as response:
                assert response.status == 200
            dropped = await recorder.wait_event(lambda e: e["kind"] == "replica.state" and e["to"] is None, 20)
    assert dropped["peer"] == target


async def collection_with_points_more(session: aiohttp.ClientSession, cluster: Cluster, start: int,
                                      stop: int) -> None:
    for first in range(start, stop, 500):
        points = [{"id": i, "vector": [1.0] * 32, "payload": {"i": i}} for i in range(first, first + 500)]
        async with session.put(f"{cluster.node_url('n1')}/collections/c/points?wait=true",
                               json={"points": points}) as response:
            assert response.status == 200
