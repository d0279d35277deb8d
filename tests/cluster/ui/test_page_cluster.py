"""The live page follows a real cluster: a replica dropped through Qdrant's cluster API disappears from the
page, and a replica added by a transfer appears, each within a second of the change."""

from __future__ import annotations

import time
from pathlib import Path

from cluster.events.broker import EmbeddedBroker
from cluster.pytest_plugin import wait_replicas_active
from cluster.ui import UiServer
from tests.cluster.helpers import ClusterApi, cluster_started, transfer_operation
from tests.cluster.ui.conftest import CLUSTER
from tests.cluster.ui.devtools import DevToolsPage
from tests.cluster.ui.test_page import SHOW_LATENCY_S_MAX, cell, open_live, wait_for_js

DROP_N2 = {"drop_replica": {"shard_id": 0, "peer_id": 2}}


async def test_a_state_change_in_a_real_cluster_shows_within_a_second(
        broker: EmbeddedBroker, ui: UiServer, page: DevToolsPage, tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "cluster", nodes=2, mqtt_url=broker.url,
                               cluster_name=CLUSTER) as cluster, ClusterApi(cluster) as api:
        await open_live(page, ui)
        await api.collection_create("n1", "live", shard_number=1, replication_factor=2)
        await wait_replicas_active(cluster, "live")
        await page.evaluate(wait_for_js(cell("live", 0, 2) + ".dataset.state === 'Active'"))
        changed_at = time.monotonic()
        await api.ok("n1", "POST", "/collections/live/cluster", DROP_N2)
        gone = f"!{cell('live', 0, 2)} || {cell('live', 0, 2)}.dataset.state !== 'Active'"
        await page.evaluate(wait_for_js(gone))
        assert time.monotonic() - changed_at < SHOW_LATENCY_S_MAX + 0.5  # the drop's own round trip included
        await api.ok("n1", "POST", "/collections/live/cluster", transfer_operation("replicate_shard", 1, 2))
        await page.evaluate(wait_for_js(cell("live", 0, 2) + ".dataset.state === 'Active'", timeout_s=10))
    assert page.exceptions == []
