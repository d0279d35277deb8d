"""The mosquitto that `.ci/run` installs and starts (SHARDSIM_TEST_MOSQUITTO_URL) carries a real cluster's
events, readable with `mosquitto_sub`. Skipped on a machine without it, required under CI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from cluster.events.recorder import Recorder
from node.eventbus import parse_mqtt_url
from tests.cluster.helpers import ClusterApi, cluster_started

URL = os.environ.get("SHARDSIM_TEST_MOSQUITTO_URL")
SUBSCRIBE_TIMEOUT_S = 10.0
EVENT_TIMEOUT_S = 20.0


def broker_url() -> str:
    if URL is None:
        if os.environ.get("CI"):
            pytest.fail("SHARDSIM_TEST_MOSQUITTO_URL is not set: .ci/run must start mosquitto")
        pytest.skip("no mosquitto started for the tests (SHARDSIM_TEST_MOSQUITTO_URL)")
    return URL


async def subscribed(watcher: asyncio.subprocess.Process) -> None:
    """Read mosquitto_sub's debug lines until it reports its subscription (`Subscribed (mid: 1): 0`)."""
    assert watcher.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
        while not seen or not seen[-1].startswith("Subscribed"):
            line = await watcher.stdout.readline()
            assert line, "mosquitto_sub ended before subscribing:\n" + "\n".join(seen)
            seen.append(line.decode().strip())


async def test_a_cluster_publishes_through_the_ci_mosquitto(tmp_path: Path) -> None:
    url = broker_url()
    host, port = parse_mqtt_url(url)
    mosquitto_sub, stdbuf = shutil.which("mosquitto_sub"), shutil.which("stdbuf")
    assert mosquitto_sub, "mosquitto-clients is missing"
    assert stdbuf, "coreutils' stdbuf is missing"
    async with cluster_started(tmp_path / "cluster", nodes=2, mqtt_url=url) as cluster, \
            Recorder(url, cluster.cluster_name, tmp_path / "events.jsonl") as recorder, \
            ClusterApi(cluster) as api:
        # -d: it says when it has subscribed; stdbuf -oL: it says so at once, not when its pipe buffer is full
        watcher = await asyncio.create_subprocess_exec(
            stdbuf, "-oL", mosquitto_sub, "-h", host, "-p", str(port),
            "-t", f"shardsim/{cluster.cluster_name}/coordinator/#", "-v", "-d", "-C", "1", "-W", "20",
            stdout=asyncio.subprocess.PIPE)
        try:
            await subscribed(watcher)
            await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
            event = await recorder.wait_event(
                lambda e: e["kind"] == "replica.state" and e["to"] == "Active", EVENT_TIMEOUT_S)
            output, _ = await asyncio.wait_for(watcher.communicate(), 30)
        finally:
            if watcher.returncode is None:
                watcher.kill()
                await watcher.wait()
    assert event["collection"] == "c" and event["rule"] == "collection.created"
    (message,) = [line for line in output.decode().splitlines() if line.startswith("shardsim/")]
    topic, payload = message.split(" ", 1)
    assert topic.startswith(f"shardsim/{cluster.cluster_name}/coordinator/")
    assert json.loads(payload)["source"] == "coordinator"
