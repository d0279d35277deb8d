"""Snapshot recovery rules (docs/qdrant-semantics.md sections 1.2, 1.4 and 3) on a standalone node.

Compatibility, checksum (422 malformed, 400 mismatch, checked before anything is applied), priority values,
the recovered data winning whatever the priority, `file://` confinement, bare names for shards, http(s)
downloads from a real server, and 404 for unknown collections and shards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient, file_server
from tests.processes import NodeProcess, free_port

RECOVER = "/collections/docs/snapshots/recover"
SHARD_RECOVER = "/collections/docs/shards/0/snapshots/recover"


async def docs_with_snapshot(client: NodeClient, node: NodeProcess, count: int = 30) -> tuple[dict, Path]:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(count)))
    created = await client.ok("POST", "/collections/docs/snapshots")
    return created, node.data_dir / "snapshots" / "docs" / created["name"]


async def test_incompatible_collection_is_refused(client: NodeClient, node: NodeProcess) -> None:
    _, path = await docs_with_snapshot(client, node)
    await client.collection_create("wide", size=8)
    await client.points_upsert("wide", points_make(range(5), size=8))
    status, reply = await client.call("PUT", "/collections/wide/snapshots/recover", {"location": path.as_uri()})
    assert status == 400
    assert reply["status"]["error"].startswith("Wrong input: Snapshot is not compatible with existing collection")
    assert await client.points_all("wide") == points_expected(points_make(range(5), size=8))


@pytest.mark.parametrize("checksum", ["abc", "g" * 64, "0" * 63])
async def test_malformed_checksum_is_422(client: NodeClient, node: NodeProcess, checksum: str) -> None:
    _, path = await docs_with_snapshot(client, node)
    status, reply = await client.call("PUT", RECOVER, {"location": path.as_uri(), "checksum": checksum})
    assert status == 422 and "Validation error" in reply["status"]["error"]
    status, reply = await client.upload("/collections/docs/snapshots/upload", path.read_bytes(),
                                        params={"checksum": checksum})
    assert status == 422 and "Validation error" in reply["status"]["error"]


async def test_checksum_mismatch_is_400_and_changes_nothing(client: NodeClient, node: NodeProcess) -> None:
    created, path = await docs_with_snapshot(client, node)
    later = points_make(range(500, 510))
    await client.points_upsert("docs", later)
    before = await client.points_all("docs")
    wrong = "ab" * 32
    status, reply = await client.call("PUT", RECOVER, {"location": path.as_uri(), "checksum": wrong.upper()})
    assert status == 400
    assert reply["status"]["error"] == (f"Wrong input: Snapshot checksum mismatch: expected {wrong.upper()}, "
                                        f"got {created['checksum']}")
    status, reply = await client.upload("/collections/docs/snapshots/upload", path.read_bytes(),
                                        params={"checksum": wrong})
    assert status == 400
    assert reply["status"]["error"] == f"Checksum mismatch: expected {created['checksum']}, actual {wrong}"
    status, reply = await client.call("PUT", "/collections/new/snapshots/recover",
                                      {"location": path.as_uri(), "checksum": wrong})
    assert status == 400
    assert not (await client.ok("GET", "/collections/new/exists"))["exists"]
    assert await client.points_all("docs") == before
    # the comparison ignores case; whitespace around the checksum makes it malformed (422), as in Qdrant
    body = {"location": path.as_uri(), "checksum": f" {created['checksum']} "}
    status, reply = await client.call("PUT", RECOVER, body)
    assert status == 422 and "invalid_sha256_hash" in reply["status"]["error"]
    body = {"location": path.as_uri(), "checksum": created["checksum"].upper()}
    assert await client.ok("PUT", RECOVER, body) is True


@pytest.mark.parametrize("priority", ["replica", "snapshot", "no_sync"])
async def test_standalone_recovered_data_wins_whatever_the_priority(client: NodeClient, node: NodeProcess,
                                                                    priority: str) -> None:
    _, path = await docs_with_snapshot(client, node)
    await client.points_upsert("docs", points_make(range(30), seed=11, tag="newer"))
    assert await client.ok("PUT", RECOVER, {"location": path.as_uri(), "priority": priority}) is True
    assert await client.points_all("docs") == points_expected(points_make(range(30)))


@pytest.mark.parametrize("priority", ["shard_transfer", "Snapshot", "any"])
async def test_unknown_priority_is_400(client: NodeClient, node: NodeProcess, priority: str) -> None:
    _, path = await docs_with_snapshot(client, node)
    status, reply = await client.call("PUT", RECOVER, {"location": path.as_uri(), "priority": priority})
    assert status == 400 and f"unknown variant `{priority}`" in reply["status"]["error"]
    assert reply["status"]["error"].startswith("Format error in JSON body")
    status, reply = await client.upload("/collections/docs/snapshots/upload", path.read_bytes(),
                                        params={"priority": priority})
    assert status == 400 and reply["status"]["error"].startswith("Deserialize error in query parameters")
    status, reply = await client.call("PUT", SHARD_RECOVER, {"location": "x.snapshot", "priority": priority})
    assert status == 400


async def test_file_location_must_stay_inside_snapshots_dir(client: NodeClient, node: NodeProcess,
                                                            tmp_path: Path) -> None:
    _, path = await docs_with_snapshot(client, node)
    outside = tmp_path / "outside.snapshot"
    outside.write_bytes(path.read_bytes())
    for location in (outside.as_uri(), f"file://{path.parent}/../../../outside.snapshot"):
        status, reply = await client.call("PUT", RECOVER, {"location": location})
        assert status == 403 and reply["status"]["error"].startswith("Forbidden: "), location
    missing = path.with_name("docs-1-2000-01-01-00-00-00.snapshot")
    status, reply = await client.call("PUT", RECOVER, {"location": missing.as_uri()})
    assert status == 400
    status, reply = await client.call("PUT", RECOVER, {"location": "ftp://example.com/x.snapshot"})
    assert status == 400
    status, reply = await client.call("PUT", RECOVER, {})
    assert status == 400 and "location" in reply["status"]["error"]


async def test_shard_location_rules(client: NodeClient, node: NodeProcess) -> None:
    _, path = await docs_with_snapshot(client, node)
    status, reply = await client.call("PUT", SHARD_RECOVER, {"location": path.as_uri()})
    assert status == 400
    status, reply = await client.call("PUT", SHARD_RECOVER, {"location": "none.snapshot"})
    assert status == 404 and reply["status"]["error"] == "Not found: Snapshot none.snapshot not found"
    status, reply = await client.call("PUT", "/collections/nope/shards/0/snapshots/recover",
                                      {"location": "none.snapshot"})
    assert status == 404 and reply["status"]["error"] == "Not found: Collection `nope` doesn't exist!"
    status, reply = await client.call("PUT", "/collections/docs/shards/3/snapshots/recover",
                                      {"location": "none.snapshot"})
    assert status == 404 and reply["status"]["error"] == "Not found: shard 3 not found"
    status, reply = await client.call("PUT", "/collections/nope/snapshots/recover",
                                      {"location": "file:///nonexistent"})
    assert status in (400, 403)


async def test_shard_recovery_never_creates_a_collection(client: NodeClient) -> None:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(10)))
    _, data, _ = await client.download("/collections/docs/shards/0/snapshot")
    status, reply = await client.upload("/collections/other/shards/0/snapshots/upload", data)
    assert status == 404 and reply["status"]["error"] == "Not found: Collection `other` doesn't exist!"
    assert not (await client.ok("GET", "/collections/other/exists"))["exists"]
    async with file_server({"s.snapshot": data}) as base:
        status, reply = await client.call("PUT", "/collections/other/shards/0/snapshots/recover",
                                          {"location": f"{base}/s.snapshot"})
    assert status == 404
    assert not (await client.ok("GET", "/collections/other/exists"))["exists"]


async def test_http_locations_are_downloaded(client: NodeClient, node: NodeProcess) -> None:
    created, path = await docs_with_snapshot(client, node)
    _, shard_data, _ = await client.download("/collections/docs/shards/0/snapshot")
    await client.points_upsert("docs", points_make(range(30), seed=2, tag="newer"))
    files = {"c.snapshot": path.read_bytes(), "s.snapshot": shard_data}
    async with file_server(files) as base:
        body = {"location": f"{base}/c.snapshot", "checksum": created["checksum"]}
        assert await client.ok("PUT", RECOVER, body) is True
        assert await client.points_all("docs") == points_expected(points_make(range(30)))
        assert await client.ok("PUT", "/collections/copy/snapshots/recover",
                               {"location": f"{base}/c.snapshot"}) is True
        assert await client.count("copy") == 30

        await client.points_upsert("docs", points_make(range(30), seed=2, tag="newer"))
        body = {"location": f"{base}/s.snapshot", "checksum": hashlib.sha256(shard_data).hexdigest()}
        assert await client.ok("PUT", SHARD_RECOVER, body) is True
        assert await client.points_all("docs") == points_expected(points_make(range(30)))

        await client.points_upsert("docs", points_make(range(30), seed=2, tag="newer"))
        before = await client.points_all("docs")
        for recover in (RECOVER, SHARD_RECOVER):
            status, reply = await client.call("PUT", recover, {"location": f"{base}/missing.snapshot"})
            assert status == 400, reply
            assert reply["status"]["error"].startswith(f"Wrong input: Failed to download tar from {base}/missing")
    for recover in (RECOVER, SHARD_RECOVER):
        status, reply = await client.call("PUT", recover,
                                          {"location": f"http://127.0.0.1:{free_port()}/gone.snapshot"})
        assert status >= 400 and "error" in reply["status"], reply
    assert await client.points_all("docs") == before
    assert not list((node.data_dir / "snapshots" / ".incoming").glob("*")), "download temp file left behind"
