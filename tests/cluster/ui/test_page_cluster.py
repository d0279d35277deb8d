"""The live page follows a real cluster: a replica dropped through Qdrant's cluster API disappears from the
page, and a replica added by a transfer appears, each within a second of the change."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from cluster.events.broker import EmbeddedBroker
from cluster.launcher import Cluster
from cluster.pytest_plugin import wait_replicas_active
from cluster.ui import UiServer
from tests.cluster.ui.conftest import CLUSTER
from tests.cluster.ui.devtools import DevToolsPage
from tests.cluster.ui.test_page import SHOW_LATENCY_S_MAX, cell, open_live, wait_for_js


async def test_a_state_change_in_a_real_cluster_shows_within_a_second(
        broker: EmbeddedBroker, ui: UiServer, page: DevToolsPage, tmp_path: Path) -> None:
    async with Cluster(nodes=2, run_dir=tmp_path / "cluster", mqtt_url=broker.url,
                       cluster_name=CLUSTER) as cluster, aiohttp.ClientSession() as session:
        await open_live(page, ui)
        body = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2}
        async with session.put(f"{cluster.node_url('n1')}/collections/live", json=body) as response:
            assert response.status == 200
        await wait_replicas_active(cluster, "live")
        await page.evaluate(wait_for_js(cell("live", 0, 2) + ".dataset.state === 'Active'"))
        changed_at = time.monotonic()
        async with session.post(f"{cluster.node_url('n1')}/collections/live/cluster",
                                json={"drop_replica": {"shard_id": 0, "peer_id": 2}}) as response:
            assert response.status == 200
        await page.evaluate(wait_for_js(f"!{cell('live', 0, 2)} || {cell('live', 0, 2)}.dataset.state !== 'Active'"))
        assert time.monotonic() - changed_at < SHOW_LATENCY_S_MAX + 0.5  # the drop's own round trip included
        async with session.post(f"{cluster.node_url('n1')}/collections/live/cluster", json={
                "replicate_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}}) as response:
            assert response.status == 200
        await page.evaluate(wait_for_js(cell("live", 0, 2) + ".dataset.state === 'Active'", timeout_s=10))
    assert page.exceptions == []

