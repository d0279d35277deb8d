"""A broker outage on a real cluster (`nemesis.broker_outage`): the embedded broker stops, a subscriber hears
nothing, publishers queue; after `heal()` both reconnect on the same port and events flow again."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from cluster.events.subscriber import events_stream
from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from node.retry import wait_until


@pytest.mark.shardsim(nodes=1)
async def test_a_broker_outage_stops_the_bus_until_healed(cluster: Cluster, nemesis: Nemesis) -> None:
    assert cluster.events is not None
    seen: list[int] = []
    subscribed = asyncio.Event()

    async def read() -> None:
        stream = events_stream(str(cluster.mqtt_url), cluster.cluster_name, {"probe"}, on_subscribed=subscribed.set)
        async with contextlib.aclosing(stream):
            async for event in stream:
                seen.append(event["n"])

    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(read())
        await asyncio.wait_for(subscribed.wait(), 10)
        outage = await nemesis.broker_outage()
        await wait_until(lambda: not cluster.events.connected, 10, interval_s=0.05)
        cluster.events.publish("probe", n=1)
        await asyncio.sleep(0.5)
        assert seen == [] and cluster.events.queued_count >= 1
        subscribed.clear()
        await outage.heal()
        await asyncio.wait_for(subscribed.wait(), 10)
        await wait_until(lambda: cluster.events.connected and cluster.events.queued_count == 0, 15, interval_s=0.05)
        cluster.events.publish("probe", n=2)
        await wait_until(lambda: 2 in seen, 10, interval_s=0.05)
        reader.cancel()
