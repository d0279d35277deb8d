"""A literal history of a small chaos run, rich enough to exercise every part of the report.

Collection `c`, 2 shards, replication factor 2, on peers 1..3. A link fault kills a transfer (retried,
then aborted), the replica goes Dead and is re-synced after healing; a shard snapshot is recovered with
priority `snapshot`, which makes the other replica Dead for a while.
"""

from __future__ import annotations

from typing import Any

from tests.cluster.checkers.histories import (
    event,
    final_replicas,
    meta,
    op,
    point,
    read_all,
    replica_state,
    upsert,
)

D = "d" * 64


def transfer(time_s: float, kind: str, peer_from: int, peer_to: int, **fields: Any) -> dict[str, Any]:
    return event(time_s, f"transfer.{kind}", source=f"node/{peer_from}", collection="c", shard=1,
                 method="snapshot", sync=True, **{"from": peer_from, "to": peer_to}, **fields)


def sample_history() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [meta({"c": (2, 2)}), {"type": "phase", "time": 0.0, "name": "setup"}]
    for shard, peers in ((0, (1, 2)), (1, (2, 3))):
        for peer in peers:
            records.append(replica_state(0.4, "c", shard, peer, "Initializing", None, rule="create"))
            records.append(replica_state(0.9, "c", shard, peer, "Active", "Initializing", rule="create"))
    records += [{"type": "phase", "time": 1.0, "name": "workload"},
                *upsert(1, [point(1, 1.0), point(2, 2.0)], 1.2, 1.4),
                event(2.0, "fault.applied", source="nemesis", fault_id="f1", fault="link_down", target="n3->n2",
                      params={}),
                replica_state(2.5, "c", 1, 1, "Recovery", None, rule="replicate_shard",
                              explanation="user asked to replicate shard 1 to peer 1"),
                transfer(2.5, "started", 2, 1, bytes=0, bytes_total=4096, attempt=1),
                transfer(3.4, "phase", 2, 1, phase="streaming", bytes=2048, bytes_total=4096, attempt=1),
                transfer(4.5, "phase", 2, 1, phase="retry", bytes=0, bytes_total=4096, attempt=2,
                         reason="connection reset while streaming", rule="transfer_retry"),
                transfer(5.0, "finished", 2, 1, bytes=4096, bytes_total=4096, attempt=2),
                replica_state(5.0, "c", 1, 1, "Active", "Recovery", rule="transfer_finished",
                              explanation="snapshot transfer from peer 2 finished"),
                replica_state(5.5, "c", 1, 3, "Dead", "Active", rule="update_failed",
                              explanation="forwarded update to peer 3 failed (link n3->n2 down)"),
                *op(2, "snapshot_create", {"collection": "c", "shard": 0, "peer": 1}, 6.0, 6.3,
                    result={"collection": "c", "shard": 0, "peer": 1, "name": "c-shard-0-x.snapshot",
                            "checksum": "ab" * 32}),
                *op(3, "snapshot_recover", {"collection": "c", "shard": 0, "peer": 1,
                                            "name": "c-shard-0-x.snapshot", "priority": "snapshot",
                                            "checksum": "ab" * 32, "source": "location", "corrupt": False},
                    7.0, 7.6),
                event(7.5, "decision", collection="c", shard=0, peer=1, rule="priority_snapshot",
                      explanation="priority snapshot: peer 1 Active with the snapshot, other Active replicas Dead"),
                replica_state(7.5, "c", 0, 2, "Dead", "Active", rule="priority_snapshot",
                              explanation="recovered replica on peer 1 wins"),
                transfer(8.0, "started", 2, 3, bytes=0, bytes_total=4096, attempt=1),
                transfer(9.0, "aborted", 2, 3, bytes=1024, reason="transmission failed after 3 attempts"),
                event(9.5, "fault.healed", source="nemesis", fault_id="f1", fault="link_down", target="n3->n2"),
                {"type": "phase", "time": 9.5, "name": "heal"},
                event(10.0, "transfer.started", source="node/1", collection="c", shard=0, method="snapshot",
                      sync=True, bytes=0, **{"from": 1, "to": 2}),
                replica_state(10.0, "c", 0, 2, "Recovery", "Dead", rule="auto_recovery",
                              explanation="Dead replica re-synced from Active peer 1"),
                event(11.5, "transfer.finished", source="node/1", collection="c", shard=0, method="snapshot",
                      sync=True, bytes=8192, **{"from": 1, "to": 2}),
                replica_state(11.5, "c", 0, 2, "Active", "Recovery", rule="transfer_finished"),
                replica_state(11.8, "c", 1, 3, "Active", "Dead", rule="auto_recovery"),
                {"type": "phase", "time": 12.0, "name": "grace"},
                {"type": "phase", "time": 13.0, "name": "final"},
                read_all([point(1, 1.0), point(2, 2.0)], time_s=13.2),
                final_replicas({("c", 0, 1): ("Active", D), ("c", 0, 2): ("Active", D),
                                ("c", 1, 1): ("Active", D), ("c", 1, 2): ("Active", D),
                                ("c", 1, 3): ("Active", D)}, time_s=13.4),
                {"type": "phase", "time": 13.5, "name": "check"}]
    return records
