"""The recorder: a JSON-lines history in arrival order, and waiting for an event."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.events.recorder import Recorder
from node.eventbus import EventPublisher
from tests.cluster.events.brokers import BrokerControl

EVENT_TIMEOUT_S = 10.0
EVENTS_COUNT = 300


async def test_history_lines_are_in_arrival_order(broker: BrokerControl, tmp_path: Path) -> None:
    path = tmp_path / "runs" / "history.jsonl"
    async with Recorder(broker.url, "c1", path) as recorder, \
            EventPublisher(broker.url, "c1", "client") as client, \
            EventPublisher(broker.url, "c1", "nemesis") as nemesis:
        for index in range(EVENTS_COUNT):
            client.publish("op.invoke", process=index % 3, op_id=index, f="write", value=index)
            if index % 100 == 50:
                nemesis.publish("fault.applied", fault_id=f"f{index}", fault="latency", target="n1->n2",
                                params={"latency_ms": 100})
        await recorder.wait_event(lambda event: event.get("op_id") == EVENTS_COUNT - 1, EVENT_TIMEOUT_S)
        await recorder.wait_event(lambda event: event.get("fault_id") == "f250", EVENT_TIMEOUT_S)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(set(line) == {"recv_ts", "topic", "event"} for line in lines)
    assert [line["event"] for line in lines] == recorder.events
    receive_times = [line["recv_ts"] for line in lines]
    assert receive_times == sorted(receive_times)
    op_ids = [line["event"]["op_id"] for line in lines if line["event"]["kind"] == "op.invoke"]
    assert op_ids == list(range(EVENTS_COUNT)), "one publisher's events arrive in publish order"
    faults = [line for line in lines if line["event"]["kind"] == "fault.applied"]
    assert [line["topic"] for line in faults] == ["shardsim/c1/nemesis/fault.applied"] * 3


async def test_wait_event_finds_past_events_and_times_out(amqtt_broker: BrokerControl, tmp_path: Path) -> None:
    async with Recorder(amqtt_broker.url, "c1", tmp_path / "history.jsonl") as recorder, \
            EventPublisher(amqtt_broker.url, "c1", "launcher") as launcher:
        launcher.publish("node.started", peer_id=1, name="n1", address="127.0.0.1:6001")
        launcher.publish("node.started", peer_id=2, name="n2", address="127.0.0.1:6002")
        second = await recorder.wait_event(lambda event: event.get("peer_id") == 2, EVENT_TIMEOUT_S)
        first = await recorder.wait_event(lambda event: event.get("peer_id") == 1, 0.1)
        assert (first["name"], second["name"]) == ("n1", "n2")
        with pytest.raises(TimeoutError):
            await recorder.wait_event(lambda event: event.get("peer_id") == 3, 0.3)


def rule_is(rule: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("rule") == rule


async def test_recorder_appends_to_an_existing_history(amqtt_broker: BrokerControl, tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for run in ("first", "second"):
        async with Recorder(amqtt_broker.url, "c1", path) as recorder, \
                EventPublisher(amqtt_broker.url, "c1", "coordinator") as coordinator:
            coordinator.publish("decision", rule=run)
            await recorder.wait_event(rule_is(run), EVENT_TIMEOUT_S)
    assert [json.loads(line)["event"]["rule"] for line in path.read_text().splitlines()] == ["first", "second"]
