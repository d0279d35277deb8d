"""A replica whose write-ahead log holds a damaged record (a corrupted disk) is re-synced from a healthy one.

The node still starts, keeps what the replica had up to the record, names the file and the offset in its
log and in a `shard.log_corrupt` event, and reports the replica as failed: the coordinator marks it Dead and
automatic recovery re-syncs it, so its digest equals the healthy replica's again. Nothing else is touched.
"""

from __future__ import annotations

from pathlib import Path

import msgpack

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster
from node.retry import wait_until
from node.storage.wal import DAMAGE_MARKER
from tests.cluster.helpers import ClusterApi, points_make, wait_converged

GARBAGE = b"\xc1\xc1 bytes that no msgpack reader accepts"


def record_offsets(segment: Path) -> list[int]:
    """The offset of every record of a log segment."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(segment.read_bytes())
    offsets, offset = [], 0
    for _ in unpacker:
        offsets.append(offset)
        offset = unpacker.tell()
    return offsets


def garbage_insert(shard_dir: Path) -> tuple[Path, int]:
    """Put garbage before the second record of the shard's first log segment; returns (file, offset)."""
    segment = sorted(shard_dir.glob("wal-*.log"))[0]
    offset = record_offsets(segment)[1]
    data = segment.read_bytes()
    segment.write_bytes(data[:offset] + GARBAGE + data[offset:])
    return segment, offset


async def test_a_replica_with_a_damaged_log_is_resynced(cluster: Cluster, api: ClusterApi) -> None:
    assert cluster.mqtt_url is not None
    await api.collection_create("n1", "docs", shard_number=2, replication_factor=2)
    points = points_make(range(400))
    for start in range(0, 400, 50):  # several log records on every replica
        await api.upsert_ok("n1", "docs", points[start:start + 50])
    digests = await wait_converged(api, "docs", replicas_per_shard=2)
    replicas = (await api.state())["collections"]["docs"]["shards"]
    victim_peer = int(sorted(replicas["0"])[0])
    victim = cluster.name_of(victim_peer)
    shard_dir = cluster.nodes[victim].data_dir / "collections" / "docs" / "shards" / "0"
    await cluster.node_kill(victim)
    segment, offset = garbage_insert(shard_dir)
    other_shards = {path.name: path.read_bytes() for path in shard_dir.parent.glob("1/*")}

    async with Recorder(cluster.mqtt_url, cluster.cluster_name, cluster.run_dir / "events.jsonl") as recorder:
        await cluster.node_restart(victim)
        event = await recorder.wait_event(lambda e: e.get("kind") == "shard.log_corrupt", 20.0)
        assert (event["collection"], event["shard"], event["peer"]) == ("docs", 0, victim_peer)
        assert (event["file"], event["offset"]) == (str(segment), offset)
        log = (cluster.run_dir / f"{victim}.log").read_text()
        assert f"{segment} at offset {offset}" in log
        await recorder.wait_event(lambda e: e.get("kind") == "replica.state" and e.get("peer") == victim_peer
                                  and e.get("shard") == 0 and e.get("to") == "Dead", 20.0)
        await recorder.wait_event(lambda e: e.get("kind") == "transfer.finished" and e.get("to") == victim_peer,
                                  60.0)

    assert await wait_converged(api, "docs", replicas_per_shard=2) == digests
    assert (await api.state())["collections"]["docs"]["shards"] == replicas
    assert await api.count("n1", "docs") == 400
    await wait_until(lambda: not (shard_dir / DAMAGE_MARKER).exists(), 10.0,
                     what="the damage mark gone with the re-synced replica")
    for name, data in other_shards.items():  # the victim's replica of shard 1 (if any) was not touched
        assert (shard_dir.parent / "1" / name).read_bytes() == data, name
