"""The source's transfer driver belongs to one transfer: a new transfer with the key of an aborted one gets
its own driver.

Found by the transfer torture (replicate, target killed while Partial): the aborted transfer's driver, asleep
between two attempts, was still running when automatic recovery registered a new transfer with the same key
(collection, shard, source, target), so the source did not start a driver for it; the old driver woke, its
first report hit the gap between the two transfers (404: `TransferGone`) and it quit, and the new transfer
stayed registered with no driver, stuck forever. The source now stops a stale driver when asked to start.
"""

from __future__ import annotations

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster
from tests.cluster.helpers import ClusterApi, points_make, replica_map, wait_converged


async def test_a_new_transfer_with_an_aborted_ones_key_is_driven_from_its_first_attempt(
        cluster: Cluster, api: ClusterApi) -> None:
    assert cluster.mqtt_url is not None and cluster.toxiproxy is not None
    await api.collection_create("n1", "c", shard_number=1, replication_factor=1)
    await api.upsert_ok("n1", "c", points_make(range(300)))
    (source,) = replica_map(await api.state(), "c")[0]
    target = next(p for p in (1, 2, 3) if p != source)
    source_name, target_name = cluster.name_of(source), cluster.name_of(target)
    replicate = {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target}}
    link = f"{source_name}->{target_name}"
    async with Recorder(cluster.mqtt_url, cluster.cluster_name, cluster.run_dir / "drivers.jsonl") as recorder:
        await cluster.toxiproxy.proxy_update(link, enabled=False)
        await api.ok(source_name, "POST", "/collections/c/cluster", replicate)
        await recorder.wait_event(lambda e: e.get("kind") == "transfer.phase" and e.get("phase") == "attempt_failed"
                                  and e.get("attempt") == 1, 20.0)
        # the driver now waits 1 s before its second attempt: abort, and start the same transfer again
        await api.ok(source_name, "POST", "/collections/c/cluster", {"abort_transfer": replicate["replicate_shard"]})
        await cluster.toxiproxy.proxy_update(link, enabled=True)
        started = len(recorder.events)
        await api.ok(source_name, "POST", "/collections/c/cluster", replicate)
        finished = await recorder.wait_event(lambda e: e.get("kind") == "transfer.finished" and e.get("to") == target,
                                             30.0)
        events = recorder.events
    second = [e for e in events[started:] if e.get("kind", "").startswith("transfer.") and e.get("to") == target]
    assert second and finished in second
    assert {e.get("attempt") for e in second} == {1}, [(e["kind"], e.get("phase"), e.get("attempt")) for e in second]
    await wait_converged(api, "c", replicas_per_shard=2, timeout_s=30.0)
