"""The in-memory event bus: the unchanged publisher and subscriber over it, in order, through an outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from tests.sim import sim_unavailable

if sim_unavailable:
    pytest.skip(sim_unavailable, allow_module_level=True)

from cluster.events.subscriber import events_stream  # noqa: E402
from cluster.sim import bus, engine  # noqa: E402
from node import clock  # noqa: E402
from node.eventbus import EventPublisher, topic_for  # noqa: E402


def simulate(seed: int, main: Any) -> Any:
    loop = engine.SimEngine(seed)
    sim_bus = bus.SimBus(loop, seed)
    with clock.installed(loop.runtime()), bus.installed(sim_bus):
        return loop.run(main(loop, sim_bus))


class Collector:
    """Subscribes on the runner host (as the runner's EventPump does) and keeps what arrives."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        stream = events_stream(bus.BUS_URL, "c", on_subscribed=self.subscribed.set)
        async with contextlib.aclosing(stream):
            async for event in stream:
                self.events.append(event)


def test_events_arrive_in_order_with_the_mqtt_topic_and_payload() -> None:
    async def main(loop: engine.SimEngine, sim_bus: bus.SimBus) -> list[dict[str, Any]]:
        collector = Collector()
        reader = asyncio.get_running_loop().create_task(collector.run())
        await collector.subscribed.wait()

        async def node() -> None:
            async with EventPublisher(bus.BUS_URL, "c", "node/1") as events:
                for number in range(20):
                    events.publish("tick", number=number)
                    if number % 7 == 0:
                        await asyncio.sleep(0.001)
                await asyncio.sleep(0.5)
        await loop.host_start("n1", node(), "node")
        reader.cancel()
        return collector.events
    events = simulate(1, main)
    assert [e["number"] for e in events] == list(range(20))
    assert {e["topic"] for e in events} == {topic_for("c", "node/1", "tick")}
    assert events[0]["ts"] > engine.SIM_EPOCH_S and json.loads(json.dumps(events[0]))["source"] == "node/1"


def test_a_broker_outage_drops_connections_and_the_publishers_queue_until_it_is_back() -> None:
    async def main(loop: engine.SimEngine, sim_bus: bus.SimBus) -> dict[str, Any]:
        collector = Collector()
        reader = asyncio.get_running_loop().create_task(collector.run())
        await collector.subscribed.wait()
        seen: dict[str, Any] = {}

        async def node() -> None:
            async with EventPublisher(bus.BUS_URL, "c", "node/1") as events:
                events.publish("before")
                await asyncio.sleep(0.5)
                sim_bus.outage_start()
                await asyncio.sleep(0.1)
                events.publish("during")
                await asyncio.sleep(1.0)
                seen["during"] = (events.connected, events.queued_count)
                collector.subscribed.clear()
                sim_bus.outage_end()
                await collector.subscribed.wait()  # the subscriber is back (reconnect backoff)
                await asyncio.sleep(6.0)  # the publisher's backoff is longer: it flushes after
                events.publish("after")
                await asyncio.sleep(0.5)
                seen["after"] = (events.connected, events.queued_count, events.published_count)
        await loop.host_start("n1", node(), "node")
        reader.cancel()
        seen["kinds"] = [e["kind"] for e in collector.events]
        return seen
    seen = simulate(1, main)
    assert seen["during"] == (False, 1)
    assert seen["after"] == (True, 0, 3)
    assert seen["kinds"] == ["before", "during", "after"]


def test_what_a_killed_process_had_not_published_is_lost() -> None:
    async def main(loop: engine.SimEngine, sim_bus: bus.SimBus) -> list[str]:
        collector = Collector()
        reader = asyncio.get_running_loop().create_task(collector.run())
        await collector.subscribed.wait()

        async def node() -> None:
            async with EventPublisher(bus.BUS_URL, "c", "node/1") as events:
                events.publish("sent")
                await asyncio.sleep(0.5)
                sim_bus.outage_start()
                events.publish("queued")
                await asyncio.sleep(10.0)
        loop.host_start("n1", node(), "node")
        await asyncio.sleep(1.0)
        loop.kill("n1")
        sim_bus.host_killed("n1")
        sim_bus.outage_end()
        await asyncio.sleep(10.0)
        reader.cancel()
        return [e["kind"] for e in collector.events]
    assert simulate(1, main) == ["sent"]
