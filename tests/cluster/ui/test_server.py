"""The UI server without a browser: one self-contained page, and `/events` as Server-Sent Events that replay
the buffer, follow the bus of one cluster, resume after `Last-Event-ID`, and end when the server stops."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

from cluster.events.broker import EmbeddedBroker
from cluster.ui import UiServer
from node.eventbus import EventPublisher
from tests.cluster.ui.conftest import CLUSTER
from tests.processes import free_port

READ_TIMEOUT_S = 5.0
PROCESS_STOP_TIMEOUT_S = 5.0


async def sse_messages(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """The next `count` SSE messages as {"id", "event", "data"} (comments and `retry` skipped)."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(READ_TIMEOUT_S):
        while len(messages) < count:
            block = (await response.content.readuntil(b"\n\n")).decode()
            fields = dict(line.split(": ", 1) for line in block.strip().splitlines() if not line.startswith(":"))
            if "data" in fields:
                messages.append({"id": fields.get("id"), "event": fields.get("event", "message"),
                                 "data": json.loads(fields["data"])})
    return messages


async def test_the_page_is_one_self_contained_document(ui: UiServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(ui.url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert not re.search(r"""\b(src|href)\s*=""", page), "no external scripts, styles or images"
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    config_block = re.search(r'<script id="config" type="application/json">(.*?)</script>', page, re.S)
    assert config_block is not None
    config = json.loads(config_block[1])
    assert config["cluster"] == CLUSTER and config["events_max"] == 5000
    assert config["states"]["Dead"] == {"fill": "#d64541", "text": "#ffffff"}
    assert set(config["states"]) >= {"Active", "Dead", "Partial", "Recovery", "Initializing", "ManualRecovery",
                                     "Listener"}


async def test_events_replay_then_follow_the_cluster(ui: UiServer, broker: EmbeddedBroker,
                                                     coordinator_events: EventPublisher) -> None:
    coordinator_events.publish("node.started", peer_id=1, name="n1")
    await ui.wait_events_seen(1, timeout_s=5)
    async with EventPublisher(broker.url, "another-cluster", "coordinator") as elsewhere, \
            aiohttp.ClientSession() as session, session.get(ui.url + "events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        hello, replayed = await sse_messages(response, 2)
        assert hello["event"] == "hello" and hello["data"]["reset"] and hello["data"]["replay_count"] == 1
        assert replayed["data"]["kind"] == "node.started" and replayed["id"] == f"{ui.buffer.boot}-1"
        elsewhere.publish("node.started", peer_id=9, name="not ours")
        coordinator_events.publish("replica.state", collection="c", shard=0, peer=1, from_=None, to="Active")
        [live] = await sse_messages(response, 1)
    assert live["data"]["kind"] == "replica.state" and live["data"]["to"] == "Active"
    assert live["data"]["topic"] == f"shardsim/{CLUSTER}/coordinator/replica.state"
    assert live["id"] == f"{ui.buffer.boot}-2"


async def test_a_page_resumes_after_its_last_event_id(ui: UiServer, coordinator_events: EventPublisher) -> None:
    for peer in (1, 2, 3):
        coordinator_events.publish("node.started", peer_id=peer, name=f"n{peer}")
    await ui.wait_events_seen(3, timeout_s=5)
    headers = {"Last-Event-ID": ui.buffer.event_id(2)}
    async with aiohttp.ClientSession() as session, session.get(ui.url + "events", headers=headers) as response:
        hello, replayed = await sse_messages(response, 2)
    assert not hello["data"]["reset"] and hello["data"]["replay_count"] == 1
    assert replayed["data"]["peer_id"] == 3


async def test_stopping_the_server_ends_open_streams_promptly(broker: EmbeddedBroker) -> None:
    async with aiohttp.ClientSession() as session:
        async with UiServer(broker.url, CLUSTER) as ui:
            response = await session.get(ui.url + "events")
            await sse_messages(response, 1)
            stopping_s = time.monotonic()
        async with asyncio.timeout(READ_TIMEOUT_S):
            rest = await response.content.read()
        response.release()
    assert rest == b"" and time.monotonic() - stopping_s < 1.5


async def test_shardsim_ui_command_serves_the_page(broker: EmbeddedBroker) -> None:
    port = free_port()
    command = [sys.executable, "-m", "cluster.cli", "ui", "--mqtt-url", broker.url, "--cluster-name", CLUSTER,
               "--port", str(port)]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(15):
            banner = (await process.stdout.readline()).decode()
        assert f"http://127.0.0.1:{port}/" in banner
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/status") as response:
            status = await response.json()
        assert status["cluster"] == CLUSTER and status["subscribed_count"] == 1
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(PROCESS_STOP_TIMEOUT_S):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
