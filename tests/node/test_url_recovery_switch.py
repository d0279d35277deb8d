"""Qdrant's `service.enable_snapshot_url_recovery` (issue 18 item 4): with it off, every recovery from an
http(s) location is refused with 403 before anything is downloaded; file locations and uploads still recover.

Reference: docs/node.md (settings) and Qdrant's snapshot routes: the check comes right after the body is read,
with the message `Snapshot recovery from remote URLs is disabled in the configuration`. The partial-snapshot
route, which shardsim does not otherwise serve, refuses a remote URL the same way first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from node.settings import settings_from_args
from tests.helpers import points_make
from tests.node.client import NodeClient, file_server
from tests.processes import NodeProcess

FORBIDDEN = "Forbidden: Snapshot recovery from remote URLs is disabled in the configuration"
ROUTES = ["/collections/docs/snapshots/recover", "/collections/docs/shards/0/snapshots/recover"]


@pytest.fixture
def locked_process(node_factory: Callable[..., NodeProcess]) -> NodeProcess:
    return node_factory("locked", peer_id=1, extra_args=["--no-enable-snapshot-url-recovery"])


@pytest.fixture
async def locked(locked_process: NodeProcess) -> AsyncIterator[NodeClient]:
    async with NodeClient(locked_process.url) as bound:
        yield bound


async def test_remote_locations_are_refused_before_any_download(locked: NodeClient) -> None:
    await locked.collection_create("docs")
    await locked.points_upsert("docs", points_make(range(20)))
    async with file_server({"x.snapshot": b"never fetched"}) as base:
        for location in (f"{base}/x.snapshot", f"{base.replace('http://', 'HTTPS://')}/x.snapshot"):
            for route in ROUTES:
                status, reply = await locked.call("PUT", route, {"location": location})
                assert (status, reply["status"]["error"]) == (403, FORBIDDEN), (route, location)
            status, reply = await locked.call("POST", "/collections/docs/shards/0/snapshot/partial/recover_from",
                                              {"peer_url": location})
            assert (status, reply["status"]["error"]) == (403, FORBIDDEN)
    assert await locked.count("docs") == 20


async def test_file_locations_and_uploads_still_recover(locked: NodeClient, locked_process: NodeProcess) -> None:
    await locked.collection_create("docs")
    await locked.points_upsert("docs", points_make(range(20)))
    snapshot = await locked.ok("POST", "/collections/docs/snapshots")
    await locked.points_upsert("docs", points_make(range(20, 30)))
    path = (locked_process.data_dir / "snapshots" / "docs" / snapshot["name"]).resolve()
    assert await locked.ok("PUT", ROUTES[0], {"location": path.as_uri()}) is True
    assert await locked.count("docs") == 20
    await locked.points_upsert("docs", points_make(range(20, 30)))
    status, body, _ = await locked.download(f"/collections/docs/snapshots/{snapshot['name']}")
    assert status == 200
    status, reply = await locked.upload("/collections/docs/snapshots/upload", body)
    assert status == 200, reply
    assert await locked.count("docs") == 20


async def test_with_the_switch_on_the_partial_route_says_what_shardsim_lacks(client: NodeClient) -> None:
    await client.collection_create("docs")
    status, reply = await client.call("POST", "/collections/docs/shards/0/snapshot/partial/recover_from",
                                      {"peer_url": "http://127.0.0.1:9/"})
    assert (status, reply["status"]["error"]) == (
        400, "Bad request: Partial snapshots are not supported by shardsim: recover a full shard snapshot instead")


def test_the_switch_is_read_from_qdrants_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY", "false")
    monkeypatch.setenv("QDRANT__STAGING__SNAPSHOT_RECOVERY_DELAY", "2.5")
    settings = settings_from_args(["--data-dir", str(tmp_path)])
    assert (settings.enable_snapshot_url_recovery, settings.snapshot_recovery_delay_s) == (False, 2.5)
    monkeypatch.delenv("QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY")
    assert settings_from_args(["--data-dir", str(tmp_path)]).enable_snapshot_url_recovery is True
