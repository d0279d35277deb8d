"""Shard snapshots (docs/qdrant-semantics.md sections 1.4 and 2): `{collection}-shard-{id}-{ts}.snapshot` in
`{snapshots}/{collection}/shards/{id}/`; create, list, download, delete, recover, upload, and the stream
`GET /collections/{c}/shards/{s}/snapshot` that stores nothing."""

from __future__ import annotations

import hashlib
import re

from node.retry import wait_until
from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient, files_under
from tests.processes import NodeProcess

SHARD_RE = re.compile(r"^docs-shard-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.snapshot$")


def shard_points(points: list[dict], expected_ids: set[int]) -> list[dict]:
    return [point for point in points if point["id"] in expected_ids]


async def shard_ids_of(client: NodeClient, name: str) -> dict[int, set[int]]:
    """Which point ids each shard holds, read from each shard's stream (ids are only known by hashing)."""
    from node.protocol import shard_for_point
    info = await client.ok("GET", f"/collections/{name}")
    shards: dict[int, set[int]] = {}
    for point_id in await client.points_all(name):
        shards.setdefault(shard_for_point(point_id, info["config"]["params"]["shard_number"]), set()).add(point_id)
    return shards


async def test_shard_snapshot_lifecycle(client: NodeClient, node: NodeProcess) -> None:
    await client.collection_create("docs", shard_number=2)
    await client.points_upsert("docs", points_make(range(60)))
    base = "/collections/docs/shards/1/snapshots"
    assert await client.ok("GET", base) == []
    created = await client.ok("POST", base)
    assert SHARD_RE.match(created["name"]) and created["size"] > 0
    directory = node.data_dir / "snapshots" / "docs" / "shards" / "1"
    assert (directory / (created["name"] + ".checksum")).read_text() == created["checksum"]
    assert await client.ok("GET", base) == [created]
    assert await client.ok("GET", "/collections/docs/shards/0/snapshots") == []
    assert await client.ok("GET", "/collections/docs/snapshots") == []

    status, data, headers = await client.download(f"{base}/{created['name']}")
    assert status == 200 and hashlib.sha256(data).hexdigest() == created["checksum"]
    assert headers["Content-Type"] == "application/octet-stream"

    assert await client.ok("DELETE", f"{base}/{created['name']}") is True
    assert await client.ok("GET", base) == []
    assert files_under(directory) == set()


async def test_shard_snapshot_wait_false(client: NodeClient) -> None:
    await client.collection_create("docs", shard_number=2)
    base = "/collections/docs/shards/1/snapshots"
    status, reply = await client.call("POST", base, params={"wait": "false"})
    assert status == 202 and reply["status"] == "accepted" and "result" not in reply
    listed = await client.wait_listed(base, 1)
    status, reply = await client.call("DELETE", f"{base}/{listed[0]['name']}", params={"wait": "false"})
    assert status == 202 and "result" not in reply

    async def deleted() -> bool:
        return await client.ok("GET", base) == []
    await wait_until(deleted, 20.0, 0.05, what="the shard snapshot deleted")


async def test_shard_errors(client: NodeClient) -> None:
    status, reply = await client.call("GET", "/collections/nope/shards/0/snapshots")
    assert status == 404 and reply["status"]["error"] == "Not found: Collection `nope` doesn't exist!"
    await client.collection_create("docs", shard_number=2)
    for method in ("GET", "POST"):
        status, reply = await client.call(method, "/collections/docs/shards/5/snapshots")
        assert status == 404 and reply["status"]["error"] == "Not found: shard 5 not found"
    status, _, _ = await client.download("/collections/docs/shards/5/snapshot")
    assert status == 404
    status, reply = await client.call("DELETE", "/collections/docs/shards/0/snapshots/x.snapshot")
    assert status == 404 and reply["status"]["error"] == "Not found: Snapshot x.snapshot not found"
    status, data, _ = await client.download("/collections/docs/shards/0/snapshots/x.snapshot")
    assert status == 404 and data == b"Not found: Snapshot x.snapshot not found"


async def test_stream_stores_nothing_and_recovers_like_a_stored_one(client: NodeClient,
                                                                    node: NodeProcess) -> None:
    await client.collection_create("docs", shard_number=2)
    original = points_make(range(80))
    await client.points_upsert("docs", original)
    snapshots_root = node.data_dir / "snapshots"
    before = files_under(snapshots_root)
    status, data, headers = await client.download("/collections/docs/shards/1/snapshot")
    assert status == 200 and len(data) > 1024
    assert headers["Content-Type"] == "application/octet-stream"
    match = re.search(r'filename="([^"]+)"', headers["Content-Disposition"])
    assert match and SHARD_RE.match(match.group(1)), headers["Content-Disposition"]
    assert files_under(snapshots_root) == before, "the stream endpoint stored something"

    ids = await shard_ids_of(client, "docs")
    await client.ok("POST", "/collections/docs/points/delete", {"points": sorted(ids[1])[:10]},
                    params={"wait": "true"})
    await client.points_upsert("docs", points_make(range(80), seed=5, tag="changed"))
    status, reply = await client.upload("/collections/docs/shards/1/snapshots/upload", data,
                                        params={"checksum": hashlib.sha256(data).hexdigest()})
    assert status == 200 and reply["result"] is True, reply
    everything = await client.points_all("docs")
    expected_shard1 = points_expected(shard_points(original, ids[1]))
    assert {pid: everything[pid] for pid in ids[1]} == expected_shard1
    changed = points_expected(points_make(range(80), seed=5, tag="changed"))
    assert {pid: everything[pid] for pid in ids[0]} == {pid: changed[pid] for pid in ids[0]}


async def test_recover_by_bare_name_from_shard_folder(client: NodeClient) -> None:
    await client.collection_create("docs", shard_number=1)
    original = points_make(range(30))
    await client.points_upsert("docs", original)
    created = await client.ok("POST", "/collections/docs/shards/0/snapshots")
    await client.points_upsert("docs", points_make(range(100, 130)))
    body = {"location": created["name"], "checksum": created["checksum"], "priority": "no_sync"}
    assert await client.ok("PUT", "/collections/docs/shards/0/snapshots/recover", body) is True
    assert await client.points_all("docs") == points_expected(original)

    status, reply = await client.call("PUT", "/collections/docs/shards/0/snapshots/recover",
                                      {"location": "docs-shard-0-2020-01-01-00-00-00.snapshot"})
    assert status == 404 and reply["status"]["error"].startswith("Not found: Snapshot")
    status, reply = await client.call("PUT", "/collections/docs/shards/0/snapshots/recover",
                                      {"location": created["name"]}, params={"wait": "false"})
    assert status == 202 and reply["status"] == "accepted" and "result" not in reply


async def test_shard_upload_wait_false(client: NodeClient) -> None:
    await client.collection_create("docs", shard_number=1)
    original = points_make(range(20))
    await client.points_upsert("docs", original)
    _, data, _ = await client.download("/collections/docs/shards/0/snapshot")
    await client.ok("POST", "/collections/docs/points/delete", {"points": list(range(20))},
                    params={"wait": "true"})
    assert await client.count("docs") == 0
    status, reply = await client.upload("/collections/docs/shards/0/snapshots/upload", data,
                                        params={"wait": "false", "priority": "snapshot"})
    assert status == 202 and "result" not in reply

    async def restored() -> bool:
        return await client.count("docs") == 20
    await wait_until(restored, 20.0, 0.05, what="the uploaded shard snapshot restored")
    assert await client.points_all("docs") == points_expected(original)


async def test_client_hanging_up_mid_stream_leaves_the_node_healthy(client: NodeClient) -> None:
    await client.collection_create("docs", size=64)
    points = points_make(range(20_000), size=64)
    await client.points_upsert("docs", points, batch_size=2000)
    assert client.session is not None
    async with client.session.get(f"{client.url}/collections/docs/shards/0/snapshot") as response:
        assert response.status == 200
        await response.content.readexactly(1 << 20)
        response.close()  # hang up after the first MiB
    status, data, _ = await client.download("/collections/docs/shards/0/snapshot")
    assert status == 200 and len(data) > 4 << 20
    assert await client.count("docs") == 20_000
