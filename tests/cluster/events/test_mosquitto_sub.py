"""What a person sees with `mosquitto_sub -t 'shardsim/#' -v`: the topic, a space, and readable JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json

from node.eventbus import EventPublisher
from node.retry import wait_until
from tests.cluster.events.brokers import BrokerControl, tool_path

SUB_TIMEOUT_S = 15
REPUBLISH_S = 0.1


async def test_mosquitto_sub_shows_topic_and_json(broker: BrokerControl) -> None:
    mosquitto_sub = tool_path(("mosquitto_sub",), "mosquitto-clients")
    process = await asyncio.create_subprocess_exec(
        mosquitto_sub, "-h", "127.0.0.1", "-p", str(broker.port), "-t", "shardsim/#", "-v", "-C", "1",
        "-W", str(SUB_TIMEOUT_S), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with EventPublisher(broker.url, "c1", "nemesis") as nemesis:
            async def printed_one() -> bool:
                nemesis.publish("fault.applied", fault_id="f1", fault="partition", target="n1->n2",
                                params={"groups": [["n1"], ["n2", "n3"]]})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(process.wait()), REPUBLISH_S)
                return process.returncode is not None
            # mosquitto_sub may subscribe after the first publishes: publish again until it printed one and left
            await wait_until(printed_one, SUB_TIMEOUT_S, interval_s=0, what="mosquitto_sub to print an event")
        stdout, stderr = await asyncio.wait_for(process.communicate(), SUB_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    assert process.returncode == 0, stderr
    topic, payload = stdout.decode().rstrip("\n").split(" ", 1)
    assert topic == "shardsim/c1/nemesis/fault.applied"
    event = json.loads(payload)
    assert list(event)[:3] == ["ts", "source", "kind"]
    assert (event["source"], event["fault"], event["params"]) == \
        ("nemesis", "partition", {"groups": [["n1"], ["n2", "n3"]]})
