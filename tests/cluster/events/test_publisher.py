"""The event publisher: exact topics and payloads on both brokers, a bounded queue, never blocking."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cluster.events.recorder import Recorder
from node.eventbus import EventPublisher, parse_mqtt_url, topic_for
from node.retry import wait_until
from tests.cluster.events.brokers import BrokerControl
from tests.processes import free_port

EVENT_TIMEOUT_S = 10.0
POLL_S = 0.02


def test_topic_is_root_cluster_source_kind() -> None:
    assert topic_for("c1", "node/7", "replica.state") == "shardsim/c1/node/7/replica.state"
    assert topic_for("c1", "coordinator", "decision") == "shardsim/c1/coordinator/decision"


@pytest.mark.parametrize(("cluster", "source", "kind"), [
    ("c/1", "coordinator", "decision"), ("c1", "node/1/x", "decision"), ("c1", "coordinator", "op.#"),
    ("", "coordinator", "decision"), ("c1", "node/", "decision"), ("c+", "client", "op.ok"),
])
def test_topic_refuses_what_mqtt_cannot_carry(cluster: str, source: str, kind: str) -> None:
    with pytest.raises(ValueError):
        topic_for(cluster, source, kind)


def test_mqtt_url_parses_host_and_port_with_default_1883() -> None:
    assert parse_mqtt_url("mqtt://127.0.0.1:18830") == ("127.0.0.1", 18830)
    assert parse_mqtt_url("mqtt://broker.local") == ("broker.local", 1883)
    for bad_url in ("http://127.0.0.1:1883", "127.0.0.1:1883", "mqtt://:1883", "mqtt://host:port"):
        with pytest.raises(ValueError):
            parse_mqtt_url(bad_url)


async def test_round_trip_has_exact_topic_and_payload(broker: BrokerControl, tmp_path: Path) -> None:
    async with Recorder(broker.url, "c1", tmp_path / "history.jsonl") as recorder, \
            EventPublisher(broker.url, "c1", "node/7") as publisher:
        before_ts = time.time()
        publisher.publish("node.started", peer_id=7, name="n7", address="127.0.0.1:6333")
        publisher.publish("replica.state", collection="books", shard=0, peer=7, from_="Active", to="Dead",
                          reason="update failed", rule="R1", explanation="A replica that failed an update is Dead.")
        await recorder.wait_event(lambda event: event["kind"] == "replica.state", EVENT_TIMEOUT_S)
        after_ts = time.time()
    started, state = recorder.events
    assert set(started) == {"ts", "source", "kind", "peer_id", "name", "address"}
    assert before_ts <= started["ts"] <= after_ts
    assert (started["source"], started["kind"], started["peer_id"], started["name"], started["address"]) == \
        ("node/7", "node.started", 7, "n7", "127.0.0.1:6333")
    assert state["from"] == "Active" and state["to"] == "Dead" and "from_" not in state
    topics = [json.loads(line)["topic"] for line in recorder.path.read_text().splitlines()]
    assert topics == ["shardsim/c1/node/7/node.started", "shardsim/c1/node/7/replica.state"]
    assert publisher.published_count == 2 and publisher.dropped_count == 0


async def test_other_clusters_events_are_not_recorded(broker: BrokerControl, tmp_path: Path) -> None:
    async with Recorder(broker.url, "c1", tmp_path / "history.jsonl") as recorder, \
            EventPublisher(broker.url, "c2", "coordinator") as other, \
            EventPublisher(broker.url, "c1", "coordinator") as mine:
        other.publish("decision", rule="other")
        await wait_until(lambda: other.published_count == 1, EVENT_TIMEOUT_S, POLL_S,
                         what="the other cluster's event acknowledged")
        mine.publish("decision", rule="mine")
        await recorder.wait_event(lambda event: event.get("rule") == "mine", EVENT_TIMEOUT_S)
    assert [event["rule"] for event in recorder.events] == ["mine"]


async def test_queue_bound_drops_and_counts_without_a_broker() -> None:
    nobody_url = f"mqtt://127.0.0.1:{free_port()}"
    async with EventPublisher(nobody_url, "c1", "coordinator", queue_size=10, reconnect_s_max=0.2) as publisher:
        started_s = time.perf_counter()
        for index in range(1000):
            publisher.publish("op.invoke", process=0, op_id=index, f="write", value=index)
        elapsed_s = time.perf_counter() - started_s
        assert publisher.dropped_count == 990
        assert publisher.published_count == 0
        assert publisher.queued_count == 10
        assert not publisher.connected
    assert elapsed_s < 1.0, f"1000 publishes took {elapsed_s:.3f} s; publish must not wait for the broker"


async def test_publisher_without_url_is_off_and_counts_drops() -> None:
    async with EventPublisher(None, "c1", "launcher") as publisher:
        publisher.publish("node.started", peer_id=1, name="n1", address="127.0.0.1:1")
        publisher.publish("node.stopped", peer_id=1, name="n1", address="127.0.0.1:1")
        assert (publisher.dropped_count, publisher.published_count, publisher.connected) == (2, 0, False)


async def test_publish_never_raises_on_bad_input(broker: BrokerControl, tmp_path: Path) -> None:
    async with Recorder(broker.url, "c1", tmp_path / "history.jsonl") as recorder, \
            EventPublisher(broker.url, "c1", "client") as publisher:
        publisher.publish("op/ok", process=1)  # not a topic level: dropped
        publisher.publish("op.info", process=1, value={1, 2}, path=tmp_path, blob=b"\x01")
        await recorder.wait_event(lambda event: event["kind"] == "op.info", EVENT_TIMEOUT_S)
    assert publisher.dropped_count == 1
    (info,) = recorder.events
    assert info["value"] == [1, 2] and info["path"] == str(tmp_path) and info["blob"] == "01"


async def test_leaving_the_block_flushes_what_was_queued(broker: BrokerControl, tmp_path: Path) -> None:
    async with Recorder(broker.url, "c1", tmp_path / "history.jsonl") as recorder:
        async with EventPublisher(broker.url, "c1", "launcher") as launcher:
            launcher.publish("node.stopped", peer_id=3, name="n3", address="127.0.0.1:6003")
        assert launcher.published_count == 1, "published before the block was left, even on a fresh connection"
        await recorder.wait_event(lambda event: event["kind"] == "node.stopped", EVENT_TIMEOUT_S)
