"""The mosquitto that `.ci/run` installs and starts (SHARDSIM_TEST_MOSQUITTO_URL) carries a real cluster's
events, readable with `mosquitto_sub`. Skipped on a machine without it, required under CI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from cluster.events.recorder import Recorder
from cluster.launcher import Cluster
from node.eventbus import parse_mqtt_url

URL = os.environ.get("SHARDSIM_TEST_MOSQUITTO_URL")


def broker_url() -> str:
    if URL is None:
        if os.environ.get("CI"):
            pytest.fail("SHARDSIM_TEST_MOSQUITTO_URL is not set: .ci/run must start mosquitto")
        pytest.skip("no mosquitto started for the tests (SHARDSIM_TEST_MOSQUITTO_URL)")
    return URL


async def test_a_cluster_publishes_through_the_ci_mosquitto(tmp_path: Path) -> None:
    url = broker_url()
    host, port = parse_mqtt_url(url)
    mosquitto_sub = shutil.which("mosquitto_sub")
    assert mosquitto_sub, "mosquitto-clients is missing"
    async with Cluster(nodes=2, run_dir=tmp_path / "cluster", mqtt_url=url) as cluster, \
            Recorder(url, cluster.cluster_name, tmp_path / "events.jsonl") as recorder:
        watcher = await asyncio.create_subprocess_exec(
            mosquitto_sub, "-h", host, "-p", str(port), "-t", f"shardsim/{cluster.cluster_name}/coordinator/#",
            "-v", "-C", "1", "-W", "20", stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as session:
            body = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2}
            async with session.put(f"{cluster.node_url('n1')}/collections/c", json=body) as response:
                assert response.status == 200
        event = await recorder.wait_event(lambda e: e["kind"] == "replica.state" and e["to"] == "Active", 20)
        output, _ = await asyncio.wait_for(watcher.communicate(), 30)
    assert event["collection"] == "c" and event["rule"] == "collection.created"
    topic, payload = output.decode().strip().split(" ", 1)
    assert topic.startswith(f"shardsim/{cluster.cluster_name}/coordinator/")
    assert json.loads(payload)["source"] == "coordinator"
