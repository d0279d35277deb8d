"""A node under a seeded `node.clock.Runtime` replays its times, ids and names exactly (issue 16).

In-process, on the ordinary event loop: the runtime's wall clock ticks a quarter second per read from
2001-01-01 (so a value taken from the real clock would stand out), and its randomness is a seeded
`random.Random`. The same seed on a fresh data directory gives the same peer id, operation ids (write
versions), snapshot names, creation times and checksums (tar member mtimes included); another seed does not.
A node started again on the same data directory, without the first one ever cleaning up (as after SIGKILL),
comes back with its peer id and every acknowledged write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node import clock, logs
from node.api.app import app_build
from node.api.keys import NODE
from node.retry import wait_until
from node.service import Node
from node.settings import NodeSettings
from node.storage.collections import Storage

EPOCH_2001_S = 978_307_200.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
COLLECTION = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2}


class Ticking:
    """A clock that moves `step_s` forward at every read."""

    def __init__(self, start_s: float, step_s: float) -> None:
        self.now_s = start_s
        self.step_s = step_s

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s


def seeded(seed: int) -> clock.Runtime:
    return clock.Runtime(wall_s=Ticking(EPOCH_2001_S, 0.25), monotonic_s=Ticking(0.0, 0.001),
                         random_source=random.Random(seed), simulated=True)


@contextlib.asynccontextmanager
async def node_served(settings: NodeSettings) -> AsyncIterator[tuple[str, Node]]:
    """The node app on 127.0.0.1 (a port of the kernel's choosing), cleaned up at the end; yields its URL
    and its `Node`."""
    app = app_build(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app[NODE]
    finally:
        await runner.cleanup()


def settings_for(data_dir: Path, name: str = "n1") -> NodeSettings:
    return NodeSettings(data_dir=data_dir, snapshots_dir=data_dir / "snapshots", name=name)  # no peer id given


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> dict[str, Any]:
    async with session.request(method, url, json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 200, answer
        return answer


async def workload(url: str, node: Node) -> dict[str, Any]:
    """Writes and snapshots, and what the node answered that depends on time or randomness."""
    points = [{"id": i, "vector": [i, 1.0, 0.5, 0.25], "payload": {"n": i}} for i in range(1, 9)]
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        await call(session, "PUT", f"{url}/collections/docs", COLLECTION)
        writes = [await call(session, "PUT", f"{url}/collections/docs/points?wait=true", {"points": points[:4]}),
                  await call(session, "PUT", f"{url}/collections/docs/points?wait=true", {"points": points[4:]})]
        snapshots = [(await call(session, "POST", f"{url}/collections/docs/snapshots"))["result"],
                     (await call(session, "POST", f"{url}/collections/docs/shards/0/snapshots"))["result"],
                     (await call(session, "POST", f"{url}/snapshots"))["result"]]
        listed = (await call(session, "GET", f"{url}/collections/docs/snapshots"))["result"]
    return {"peer_id": node.peer_id, "operation_ids": [w["result"]["operation_id"] for w in writes],
            "times": [w["time"] for w in writes], "snapshots": snapshots, "listed": listed}


async def seeded_run(seed: int, data_dir: Path) -> dict[str, Any]:
    with clock.installed(seeded(seed)):
        async with node_served(settings_for(data_dir)) as (url, node):
            return await workload(url, node)


async def test_the_same_seed_replays_ids_versions_snapshot_names_times_and_bytes(tmp_path: Path) -> None:
    first = await seeded_run(7, tmp_path / "first")
    again = await seeded_run(7, tmp_path / "again")
    other = await seeded_run(8, tmp_path / "other")
    assert first == again
    assert first["peer_id"] != other["peer_id"]
    operation_ids = first["operation_ids"]
    assert operation_ids[0] < operation_ids[1]
    assert (operation_ids[0] >> 12) // 1_000_000 - int(EPOCH_2001_S) < 60, "versions come from the clock"
    for description in first["snapshots"]:
        assert description["creation_time"].startswith("2001-01-01T00:"), description
        assert "2001-01-01-00-" in description["name"], description
    snapshot_files = sorted((tmp_path / "first" / "snapshots").rglob("*.snapshot"))
    assert len(snapshot_files) == 3
    for path in snapshot_files:
        with tarfile.open(path) as archive:
            mtimes = {member.name: member.mtime for member in archive.getmembers()}
        assert mtimes and all(EPOCH_2001_S <= mtime < EPOCH_2001_S + 3600 for mtime in mtimes.values()), mtimes


async def test_snapshot_creation_time_is_the_clock_s_not_the_file_system_s(tmp_path: Path) -> None:
    with clock.installed(seeded(1)):
        async with node_served(settings_for(tmp_path)) as (url, _), \
                aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            await call(session, "PUT", f"{url}/collections/docs", COLLECTION)
            made = (await call(session, "POST", f"{url}/collections/docs/snapshots"))["result"]
    async with node_served(settings_for(tmp_path)) as (url, _), aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        listed = (await call(session, "GET", f"{url}/collections/docs/snapshots"))["result"]
    assert [d["creation_time"] for d in listed] == [made["creation_time"]]  # kept on disk, read back in real mode
    assert made["creation_time"].startswith("2001-01-01T00:")


async def test_a_node_started_again_on_its_data_without_cleaning_up_comes_back_whole(tmp_path: Path) -> None:
    points = [{"id": i, "vector": [i, 0.0, 0.0, 1.0]} for i in range(1, 21)]
    async with contextlib.AsyncExitStack() as stack:
        first_url, first = await stack.enter_async_context(node_served(settings_for(tmp_path)))
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=REQUEST_TIMEOUT))
        await call(session, "PUT", f"{first_url}/collections/docs", COLLECTION)
        await call(session, "PUT", f"{first_url}/collections/docs/points?wait=true", {"points": points})
        # the first node is still running and has run none of its cleanup (stopped only at the end of the
        # stack): what a second start finds on disk is what a SIGKILL would have left
        second_url, second = await stack.enter_async_context(node_served(settings_for(tmp_path)))
        assert second.peer_id == first.peer_id
        count = await call(session, "POST", f"{second_url}/collections/docs/points/count", {"exact": True})
        assert count["result"]["count"] == len(points)


class Recorded(logging.Handler):
    """Keeps (host, message) of every record, the host put there by `logs.HostFilter`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.addFilter(logs.HostFilter())
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((str(getattr(record, "host", None)), record.getMessage()))

    def hosts_by_broker_port(self) -> dict[int, str]:
        found = {}
        for host, message in self.lines:
            if match := re.search(r"event bus 127\.0\.0\.1:(\d+) unreachable", message):
                found[int(match[1])] = host
        return found


async def test_two_nodes_in_one_process_log_lines_that_name_their_host(tmp_path: Path) -> None:
    # each node's event publisher (a task the node starts) logs that its broker is unreachable: a closed
    # port per node, so the line itself says which node logged it
    broker_ports = {"alpha": 1, "beta": 2}
    recorded = Recorded()
    logger = logging.getLogger("node.eventbus")
    logger.addHandler(recorded)
    try:
        logger.warning("a line logged outside any node")
        async with contextlib.AsyncExitStack() as stack:
            for name, port in broker_ports.items():
                settings = settings_for(tmp_path / name, name)
                settings.mqtt_url = f"mqtt://127.0.0.1:{port}"
                await stack.enter_async_context(node_served(settings))
            await wait_until(lambda: len(recorded.hosts_by_broker_port()) == len(broker_ports), timeout_s=10,
                             what="both nodes' publishers log their broker unreachable")
    finally:
        logger.removeHandler(recorded)
    assert recorded.hosts_by_broker_port() == {port: name for name, port in broker_ports.items()}
    assert recorded.lines[0] == (logs.HOST_NONE, "a line logged outside any node")


def test_the_peer_id_is_made_once_and_written_whole(tmp_path: Path) -> None:
    with clock.installed(seeded(3)):
        made = Storage(tmp_path).identity(None)
    (tmp_path / "node.json.tmp").write_text('{"peer_')  # what a node killed mid-write of a new identity leaves
    assert Storage(tmp_path).identity(None) == made
    assert json.loads((tmp_path / "node.json").read_text()) == {"peer_id": made}
    assert Storage(tmp_path).identity(42) == 42 and Storage(tmp_path).identity(None) == 42
