"""`shardsim events` run as a real process: it prints only the asked-for kinds, readable or as raw JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cluster.events.cli import event_line
from node.eventbus import EventPublisher
from tests.cluster.events.brokers import BrokerControl

REPO_ROOT = Path(__file__).resolve().parents[3]
PROCESS_TIMEOUT_S = 20.0
MAIN_CODE = "import sys; from cluster.cli import main; sys.exit(main([{0!r}, *sys.argv[1:]]))"


@asynccontextmanager
async def events_process(*args: str, command: str = "events") -> AsyncIterator[asyncio.subprocess.Process]:
    """`shardsim <command> ...` (through `cluster.cli.main`), started, waited for until it listens, and always
    stopped by PID."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MAIN_CODE.format(command), *args, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        first_line = await asyncio.wait_for(process.stderr.readline(), PROCESS_TIMEOUT_S)
        assert first_line.startswith(b"# listening on"), first_line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def publish_mixed_kinds(url: str) -> None:
    async with EventPublisher(url, "c1", "node/2") as node:
        node.publish("node.started", peer_id=2, name="n2", address="127.0.0.1:6002")
        node.publish("replica.state", collection="books", shard=0, peer=2, from_="Active", to="Dead",
                     reason="update failed", rule="R1", explanation="A failed update marks the replica Dead.")
        node.publish("op.ok", process=0, op_id=1, f="write", value=1)
        node.publish("replica.state", collection="books", shard=1, peer=2, from_="Dead", to="Recovery",
                     reason="transfer", rule="T1", explanation="A transfer target starts in Recovery.")


async def test_events_main_prints_only_the_chosen_kind(broker: BrokerControl) -> None:
    async with events_process("--mqtt-url", broker.url, "--cluster-name", "c1", "--kind", "replica.state",
                              "--count", "2") as process:
        await publish_mixed_kinds(broker.url)
        stdout, _stderr = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT_S)
    assert process.returncode == 0
    lines = stdout.decode().splitlines()
    assert len(lines) == 2
    assert all(" node/2 replica.state collection=books " in line for line in lines)
    assert "shard=0 peer=2 from=Active to=Dead reason=\"update failed\" rule=R1" in lines[0]
    assert "shard=1 peer=2 from=Dead to=Recovery" in lines[1]


async def test_events_main_json_prints_topic_and_payload(broker: BrokerControl) -> None:
    async with events_process("--mqtt-url", broker.url, "--cluster-name", "c1", "--kind", "op.ok",
                              "--kind", "node.started", "--json", "--count", "2") as process:
        await publish_mixed_kinds(broker.url)
        stdout, _stderr = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT_S)
    topics_payloads = [line.split(" ", 1) for line in stdout.decode().splitlines()]
    assert [topic for topic, _payload in topics_payloads] == \
        ["shardsim/c1/node/2/node.started", "shardsim/c1/node/2/op.ok"]
    started = json.loads(topics_payloads[0][1])
    assert started["peer_id"] == 2 and started["kind"] == "node.started" and "recv_ts" not in started


async def test_watch_main_draws_the_cluster_from_events(amqtt_broker: BrokerControl) -> None:
    async with events_process("--mqtt-url", amqtt_broker.url, "--cluster-name", "c1", "--count", "4",
                              command="watch") as process:
        await publish_mixed_kinds(amqtt_broker.url)
        stdout, _stderr = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT_S)
    assert process.returncode == 0
    last_frame = stdout.decode().split("\x1b[H\x1b[2J")[-1]
    assert "2      n2         127.0.0.1:6002         up" in last_frame
    assert [line.split() for line in last_frame.splitlines() if line.startswith("  books/")] == \
        [["books/0", "Dead"], ["books/1", "Recovery"]]
    assert "OPS  ok 1" in last_frame and "\x1b[32m" not in last_frame, "no colors when not a terminal"


def test_event_line_quotes_only_what_needs_it() -> None:
    line = event_line({"ts": 0.5, "source": "nemesis", "kind": "fault.applied", "fault_id": "f1",
                       "target": "n1->n2", "params": {"ms": 5}, "note": "two words", "empty": None})
    assert line.endswith('nemesis fault.applied fault_id=f1 target=n1->n2 params={"ms": 5} '
                         'note="two words" empty=null')
    assert line[8:12] == ".500"
