"""Events from a real cluster, on both brokers: a transfer's whole ordered phase sequence, every replica state
change published, and a broker outage that never hurts writes or transfers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cluster.events.recorder import Recorder
from cluster.pytest_plugin import digests_equal, replica_digests, wait_replicas_active
from node.retry import wait_until
from tests.cluster.events.brokers import BrokerControl
from tests.cluster.helpers import ClusterApi, cluster_started, replica_map, transfer_operation
from tests.helpers import points_make

PHASES_IN_ORDER = ["queue_installed", "streaming", "streamed", "restored", "queued", "partial",
                   "queue_replayed", "finished"]
VECTOR_SIZE = 32
EVENT_TIMEOUT_S = 20.0


async def collection_with_points(api: ClusterApi, count: int) -> None:
    """Collection `c` (1 shard, 1 replica) created through n1, `count` points written through n2."""
    await api.collection_create("n1", "c", shard_number=1, replication_factor=1, size=VECTOR_SIZE)
    await wait_replicas_active(api.cluster, "c")
    await api.upsert_ok("n2", "c", points_make(range(count), size=VECTOR_SIZE), batch=500)


async def holder_and_free(api: ClusterApi) -> tuple[int, int]:
    """(the peer holding shard 0, the other of the two peers)."""
    (holder,) = replica_map(await api.state(), "c")[0]
    return holder, 3 - holder


async def replicate(api: ClusterApi, source: int, target: int) -> None:
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, target))


def observed_states(info: dict[str, Any]) -> dict[tuple[int, int], str]:
    """`(shard, peer) -> state` of a node's cluster info."""
    observed = {(s["shard_id"], s["peer_id"]): s["state"] for s in info["remote_shards"]}
    return observed | {(s["shard_id"], info["peer_id"]): s["state"] for s in info["local_shards"]}


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
    async with cluster_started(tmp_path / "cluster", nodes=2, mqtt_url=broker.url) as cluster, \
            Recorder(broker.url, cluster.cluster_name, tmp_path / "events.jsonl") as recorder, \
            ClusterApi(cluster) as api:
        await collection_with_points(api, 3000)
        source, target = await holder_and_free(api)
        await replicate(api, source, target)
        await recorder.wait_event(lambda e: e["kind"] == "transfer.finished", 30)
        observed = observed_states(await wait_replicas_active(cluster, "c"))
        await wait_until(lambda: fold_replica_states(recorder.events) == observed, EVENT_TIMEOUT_S,
                         what="the recorder to hold the replica.state events that led to the states observed")
        events = list(recorder.events)
    transfer = [e for e in events if e["kind"].startswith("transfer.")]
    assert transfer[0]["kind"] == "transfer.started" and transfer[-1]["kind"] == "transfer.finished"
    phases = [e["phase"] for e in transfer[1:]]
    assert [p for p in dict.fromkeys(phases)] == PHASES_IN_ORDER, phases
    streamed = [e["bytes"] for e in transfer if e["phase"] in ("streaming", "streamed")]
    assert streamed == sorted(streamed) and streamed[-1] > 100_000
    assert all(e["attempt"] == 1 and e["from"] == source and e["to"] == target for e in transfer[1:])
    final = fold_replica_states(events)
    assert final == observed == {(0, source): "Active", (0, target): "Active"}


async def test_a_broker_outage_never_hurts_writes_or_transfers(amqtt_broker: BrokerControl,
                                                                tmp_path: Path) -> None:
    broker = amqtt_broker
    async with cluster_started(tmp_path / "cluster", nodes=2, mqtt_url=broker.url) as cluster, \
            ClusterApi(cluster) as api:
        await collection_with_points(api, 1000)
        source, target = await holder_and_free(api)
        await broker.stop()
        started = asyncio.get_running_loop().time()
        await api.upsert_ok("n1", "c", points_make(range(1000, 2000), size=VECTOR_SIZE, tag="b"), batch=500)
        await replicate(api, source, target)
        await wait_replicas_active(cluster, "c", timeout_s=30)
        assert asyncio.get_running_loop().time() - started < 20, "the outage slowed the cluster down"
        assert digests_equal(await replica_digests(cluster, "c"))
        await broker.start()
        async with Recorder(broker.url, cluster.cluster_name, tmp_path / "after.jsonl") as recorder:
            await api.ok("n1", "POST", "/collections/c/cluster",
                         {"drop_replica": {"shard_id": 0, "peer_id": target}})
            dropped = await recorder.wait_event(lambda e: e["kind"] == "replica.state" and e["to"] is None,
                                                EVENT_TIMEOUT_S)
    assert dropped["peer"] == target
