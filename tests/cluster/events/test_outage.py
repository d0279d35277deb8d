"""A broker outage: publishing goes on without blocking, and the queued events are flushed in order.

The publisher reaches the broker through a TCP gate, the recorder directly; after the broker comes back on
the same port the gate opens only once the recorder has subscribed again, so every flushed event must be
seen, once and in publish order.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cluster.events.recorder import Recorder
from node.eventbus import EventPublisher
from node.retry import wait_until
from tests.cluster.events.brokers import BrokerControl
from tests.cluster.events.gate import TcpGate

EVENT_TIMEOUT_S = 15.0
POLL_S = 0.02
OUTAGE_EVENTS = 200
LOOP_LAG_S_MAX = 0.5


async def loop_lag_s_max(duration_s: float, step_s: float = 0.02) -> float:
    """The worst lateness of a short sleep over `duration_s`: how much the event loop was blocked."""
    worst_s = 0.0
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        started = time.monotonic()
        await asyncio.sleep(step_s)
        worst_s = max(worst_s, time.monotonic() - started - step_s)
    return worst_s


async def test_outage_queues_then_flushes_in_order(broker: BrokerControl, tmp_path: Path) -> None:
    gate = TcpGate(broker.port)
    await gate.open()
    try:
        async with Recorder(broker.url, "c1", tmp_path / "history.jsonl") as recorder, \
                EventPublisher(f"mqtt://127.0.0.1:{gate.port}", "c1", "coordinator",
                               reconnect_s_max=0.5) as publisher:
            publisher.publish("decision", rule="before-outage")
            await recorder.wait_event(lambda event: event.get("rule") == "before-outage", EVENT_TIMEOUT_S)

            await gate.close()
            await broker.stop()
            await wait_until(lambda: not publisher.connected, EVENT_TIMEOUT_S, POLL_S,
                             what="the publisher to see the outage")
            started_s = time.perf_counter()
            for index in range(OUTAGE_EVENTS):
                publisher.publish("op.ok", process=0, op_id=index, f="write", value=index)
            publish_s = time.perf_counter() - started_s
            lag_s = await loop_lag_s_max(1.0)  # the publisher keeps retrying meanwhile
            assert publisher.queued_count == OUTAGE_EVENTS

            await broker.start()
            await recorder.wait_subscribed(EVENT_TIMEOUT_S, times=2)
            await gate.open()
            await wait_until(lambda: publisher.connected, EVENT_TIMEOUT_S, POLL_S,
                             what="the publisher to reconnect by itself")
            publisher.publish("decision", rule="after-outage")
            await recorder.wait_event(lambda event: event.get("rule") == "after-outage", EVENT_TIMEOUT_S)
    finally:
        await gate.close()

    assert publish_s < 0.5, f"{OUTAGE_EVENTS} publishes during the outage took {publish_s:.3f} s"
    assert lag_s < LOOP_LAG_S_MAX, f"event loop blocked for {lag_s:.3f} s during reconnect attempts"
    kinds_rules = [event.get("rule", event.get("op_id")) for event in recorder.events]
    assert kinds_rules == ["before-outage", *range(OUTAGE_EVENTS), "after-outage"]
    assert publisher.dropped_count == 0
    assert publisher.published_count == OUTAGE_EVENTS + 2
