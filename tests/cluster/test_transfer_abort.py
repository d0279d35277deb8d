"""Aborted and interrupted transfers: right after the start, mid-stream, and with the target killed.

Reference: docs/cluster.md, "A snapshot transfer, step by step" (failures, aborts, automatic recovery): a user
abort or a failed transfer makes a replicate target Dead (a move target is removed); a Dead replica is then
re-synced by automatic recovery; a restarting peer aborts its transfers. The stream is slowed by a bandwidth
toxic on the target->source link (the target downloads the source's shard snapshot through it).
"""

from __future__ import annotations

import re

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster
from tests.cluster.helpers import (
    ClusterApi,
    assert_converged,
    replica_map,
    transfer_operation,
    wait_converged,
    wait_streaming,
)
from tests.helpers import points_make

SLOW_RATE_KB_S = 200
BIG_POINTS = 20_000
BIG_SIZE = 32


async def one_shard_collection(api: ClusterApi, points: int, size: int) -> tuple[int, int, int]:
    """Collection `c` (1 shard, 2 replicas) with `points` points; returns (source, other holder, outsider)."""
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2, size=size)
    await api.upsert_ok("n2", "c", points_make(range(points), size=size))
    source, holder = sorted(replica_map(await api.state(), "c")[0])
    return source, holder, next(p for p in (1, 2, 3) if p not in (source, holder))


async def test_abort_right_after_start_leaves_target_dead_then_recovered(cluster: Cluster, api: ClusterApi) -> None:
    source, _, outsider = await one_shard_collection(api, 500, 4)
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, outsider))
    await api.ok("n2", "POST", "/collections/c/cluster", transfer_operation("abort_transfer", source, outsider))
    info = await api.cluster_info("n3" if outsider != 3 else "n1", "c")
    assert info["shard_transfers"] == []
    assert {"shard_id": 0, "peer_id": outsider, "state": "Dead"} in info["remote_shards"]
    await wait_converged(api, "c", replicas_per_shard=3)
    for node in ("n1", "n2", "n3"):
        assert await api.count(node, "c") == 500


async def test_abort_mid_stream_then_automatic_recovery(cluster: Cluster, api: ClusterApi) -> None:
    assert cluster.toxiproxy is not None
    source, _, outsider = await one_shard_collection(api, BIG_POINTS, BIG_SIZE)
    link = f"{cluster.name_of(outsider)}->{cluster.name_of(source)}"
    await cluster.toxiproxy.toxic_add(link, "bandwidth", {"rate": SLOW_RATE_KB_S})
    await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, outsider))
    transfer = await wait_streaming(api, "c")
    assert transfer["bytes_total"] > 2 * 1024 * 1024, "a shard of a few MB"
    assert transfer["bytes"] < transfer["bytes_total"]
    comment = (await api.cluster_info("n2", "c"))["shard_transfers"][0]["comment"]
    assert re.fullmatch(r"recovering \(\d+\.\d\ds\) \| downloading \(\d+\.\d\ds\), \d+/\d+ bytes \(\d+%\)", comment), comment
    await api.ok("n2", "POST", "/collections/c/cluster", transfer_operation("abort_transfer", source, outsider))
    assert replica_map(await api.state(), "c")[0][outsider] == "Dead"
    await cluster.toxiproxy.reset()
    await wait_converged(api, "c", replicas_per_shard=3, timeout_s=60.0)
    for node in ("n1", "n2", "n3"):
        assert await api.count(node, "c") == BIG_POINTS


async def test_target_killed_mid_stream_aborts_and_cluster_converges(cluster: Cluster, api: ClusterApi) -> None:
    assert cluster.toxiproxy is not None and cluster.mqtt_url is not None
    source, _, outsider = await one_shard_collection(api, BIG_POINTS, BIG_SIZE)
    link = f"{cluster.name_of(outsider)}->{cluster.name_of(source)}"
    async with Recorder(cluster.mqtt_url, cluster.cluster_name, cluster.run_dir / "events.jsonl") as recorder:
        await cluster.toxiproxy.toxic_add(link, "bandwidth", {"rate": SLOW_RATE_KB_S})
        await api.ok("n1", "POST", "/collections/c/cluster", transfer_operation("replicate_shard", source, outsider))
        await wait_streaming(api, "c")
        await cluster.node_kill(cluster.name_of(outsider))
        await recorder.wait_event(lambda e: e.get("kind") == "transfer.aborted" and e.get("to") == outsider,
                                  20.0)
        await cluster.toxiproxy.reset()
        await cluster.node_restart(cluster.name_of(outsider))
        await wait_converged(api, "c", replicas_per_shard=3, timeout_s=60.0)
    await assert_converged(api, "c")
    for node in ("n1", "n2", "n3"):
        assert await api.count(node, "c") == BIG_POINTS
