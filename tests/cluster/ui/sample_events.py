"""A small cluster story told as bus events, for the UI tests: 3 peers, a collection of 2 shards x 2 replicas,
a link fault, a Dead replica re-synced by a snapshot transfer, and the decisions with their rules."""

from __future__ import annotations

import time

from node.eventbus import EventPublisher

COLLECTION = "books"


def replica(events: EventPublisher, ts: float, shard: int, peer: int, before: str | None, after: str | None,
            rule: str, explanation: str) -> None:
    events.publish("replica.state", ts=ts, collection=COLLECTION, shard=shard, peer=peer, from_=before, to=after,
                   reason=rule, rule=rule, explanation=explanation)


def transfer(events: EventPublisher, ts: float, kind: str, shard: int, source: int, target: int, **fields: object) -> None:
    events.publish(f"transfer.{kind}", ts=ts, collection=COLLECTION, shard=shard, from_=source, to=target,
                   method="snapshot", sync=True, **fields)


def publish_story(coordinator: EventPublisher, nemesis: EventPublisher, start_ts: float | None = None) -> int:
    """Publish the story with timestamps from `start_ts` (default: 20 s ago); returns the number of events."""
    t0 = time.time() - 20 if start_ts is None else start_ts
    for peer in (1, 2, 3):
        coordinator.publish("node.started", ts=t0, peer_id=peer, name=f"n{peer}", address=f"127.0.0.1:{6330 + peer}")
    placement = [(shard, peer) for shard, peers in ((0, (1, 2)), (1, (2, 3))) for peer in peers]
    for shard, peer in placement:
        replica(coordinator, t0 + 0.5, shard, peer, None, "Initializing", "create",
                f"collection {COLLECTION} created: shard {shard} placed on peer {peer}")
    for shard, peer in placement:
        replica(coordinator, t0 + 1.0, shard, peer, "Initializing", "Active", "create_done",
                "shard created on the peer")
    nemesis.publish("fault.applied", ts=t0 + 4, fault_id="f1", fault="latency", target="n3->n2",
                    params={"latency": 800, "jitter": 100})
    replica(coordinator, t0 + 6, 1, 3, "Active", "Dead", "update_failed",
            "forwarded update to peer 3 failed (timeout on link n2->n3)")
    nemesis.publish("fault.applied", ts=t0 + 8, fault_id="f2", fault="link_down", target="n1->n2", params={})
    replica(coordinator, t0 + 10, 1, 3, "Dead", "Recovery", "auto_recovery",
            "Dead replica re-synced from Active peer 2")
    transfer(coordinator, t0 + 10, "started", 1, 2, 3, phase="started", bytes=0, bytes_total=3_500_000, attempt=1)
    transfer(coordinator, t0 + 13, "phase", 1, 2, 3, phase="streaming", bytes=2_300_000, bytes_total=3_500_000,
             attempt=1)
    nemesis.publish("fault.healed", ts=t0 + 14, fault_id="f1", fault="latency", target="n3->n2", params={})
    replica(coordinator, t0 + 15, 0, 3, None, "Listener", "replicate_shard", "user asked for a listener replica")
    replica(coordinator, t0 + 16, 0, 2, "Active", "Dead", "priority_snapshot",
            "snapshot recovered on peer 1 with priority snapshot: other Active replicas become Dead")
    return 3 + 8 + 1 + 1 + 1 + 1 + 2 + 1 + 2
