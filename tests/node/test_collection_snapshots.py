"""Collection snapshots through Qdrant's REST paths: create, list, download, delete, recover, upload.

docs/qdrant-semantics.md sections 1.2 and 2: names `{collection}-{peer_id}-{YYYY-MM-DD-HH-MM-SS}.snapshot` in
`{snapshots}/{collection}/`, a `.checksum` sidecar equal to the SHA-256 of the downloaded bytes, the
envelope `{"result", "status": "ok", "time"}`, `wait=false` answered 202 without a result.
"""

from __future__ import annotations

import hashlib
import re

from node.retry import wait_until
from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

NAME_RE = re.compile(r"^docs-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.snapshot$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


async def test_create_list_download_delete(client: NodeClient, node: NodeProcess) -> None:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(50)))
    assert await client.ok("GET", "/collections/docs/snapshots") == []

    created = await client.ok("POST", "/collections/docs/snapshots", params={"wait": "true"})
    assert NAME_RE.match(created["name"]), created
    assert TIME_RE.match(created["creation_time"])
    assert isinstance(created["size"], int) and created["size"] > 0
    directory = node.data_dir / "snapshots" / "docs"
    assert (directory / created["name"]).stat().st_size == created["size"]
    sidecar = (directory / (created["name"] + ".checksum")).read_text()
    assert sidecar == created["checksum"] and re.fullmatch(r"[0-9a-f]{64}", sidecar)

    assert await client.ok("GET", "/collections/docs/snapshots") == [created]
    status, data, headers = await client.download(f"/collections/docs/snapshots/{created['name']}")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert hashlib.sha256(data).hexdigest() == created["checksum"]
    assert len(data) == created["size"]

    assert await client.ok("DELETE", f"/collections/docs/snapshots/{created['name']}") is True
    assert await client.ok("GET", "/collections/docs/snapshots") == []
    assert not (directory / created["name"]).exists()
    assert not (directory / (created["name"] + ".checksum")).exists()


async def test_wait_false_answers_202_and_snapshot_appears(client: NodeClient) -> None:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(20)))
    status, reply = await client.call("POST", "/collections/docs/snapshots", params={"wait": "false"})
    assert status == 202
    assert reply["status"] == "accepted" and "result" not in reply and isinstance(reply["time"], float)
    listed = await client.wait_listed("/collections/docs/snapshots", 1)
    assert NAME_RE.match(listed[0]["name"])

    status, reply = await client.call("DELETE", f"/collections/docs/snapshots/{listed[0]['name']}",
                                      params={"wait": "false"})
    assert status == 202 and "result" not in reply

    async def deleted() -> bool:
        return await client.ok("GET", "/collections/docs/snapshots") == []
    await wait_until(deleted, 20.0, 0.05, what="the collection snapshot deleted")


async def test_two_snapshots_in_one_second_get_distinct_names(client: NodeClient) -> None:
    await client.collection_create("docs")
    first = await client.ok("POST", "/collections/docs/snapshots")
    second = await client.ok("POST", "/collections/docs/snapshots")
    assert first["name"] != second["name"]
    assert len(await client.ok("GET", "/collections/docs/snapshots")) == 2


async def test_errors_use_qdrant_codes_and_messages(client: NodeClient) -> None:
    status, reply = await client.call("POST", "/collections/nope/snapshots")
    assert status == 404 and reply["status"]["error"] == "Not found: Collection `nope` doesn't exist!"
    assert "result" not in reply
    status, reply = await client.call("GET", "/collections/nope/snapshots")
    assert status == 404
    await client.collection_create("docs")
    status, reply = await client.call("DELETE", "/collections/docs/snapshots/missing.snapshot")
    assert status == 404 and reply["status"]["error"] == "Not found: Snapshot missing.snapshot not found"
    status, data, headers = await client.download("/collections/docs/snapshots/missing.snapshot")
    assert status == 404 and data == b"Not found: Snapshot missing.snapshot not found"
    assert headers["Content-Type"].startswith("text/plain")
    status, reply = await client.call("POST", "/collections/docs/snapshots", params={"wait": "maybe"})
    assert status == 400 and reply["status"]["error"].startswith("Deserialize error in query parameters")


async def test_wait_false_on_unknown_collection_is_still_accepted(client: NodeClient) -> None:
    status, reply = await client.call("POST", "/collections/nope/snapshots", params={"wait": "false"})
    assert status == 202 and reply["status"] == "accepted"


async def test_recover_from_file_location_restores_old_content(client: NodeClient, node: NodeProcess) -> None:
    original = points_make(range(40))
    await client.collection_create("docs")
    await client.points_upsert("docs", original)
    created = await client.ok("POST", "/collections/docs/snapshots")
    await client.points_upsert("docs", points_make(range(40), seed=99, tag="b"))
    await client.points_upsert("docs", points_make(range(1000, 1005)))
    path = node.data_dir / "snapshots" / "docs" / created["name"]
    body = {"location": path.as_uri(), "priority": "snapshot", "checksum": created["checksum"]}
    assert await client.ok("PUT", "/collections/docs/snapshots/recover", body) is True
    assert await client.points_all("docs") == points_expected(original)


async def test_recover_creates_missing_collection_with_snapshot_config(client: NodeClient,
                                                                       node: NodeProcess) -> None:
    original = points_make(range(30), size=6)
    body = {"vectors": {"size": 6, "distance": "Dot"}, "shard_number": 3}
    assert await client.ok("PUT", "/collections/docs", body) is True
    await client.points_upsert("docs", original)
    created = await client.ok("POST", "/collections/docs/snapshots")
    path = node.data_dir / "snapshots" / "docs" / created["name"]
    assert await client.ok("PUT", "/collections/copy/snapshots/recover", {"location": path.as_uri()}) is True
    info = await client.ok("GET", "/collections/copy")
    assert info["config"]["params"]["vectors"] == {"size": 6, "distance": "Dot"}
    assert info["config"]["params"]["shard_number"] == 3
    assert info["points_count"] == 30
    assert await client.points_all("copy") == points_expected(original)


async def test_upload_recovers_and_wait_false_is_accepted(client: NodeClient, node: NodeProcess) -> None:
    original = points_make(range(25))
    await client.collection_create("docs")
    await client.points_upsert("docs", original)
    created = await client.ok("POST", "/collections/docs/snapshots")
    _, data, _ = await client.download(f"/collections/docs/snapshots/{created['name']}")
    await client.points_upsert("docs", points_make(range(25), seed=3, tag="later"))

    status, reply = await client.upload("/collections/docs/snapshots/upload", data,
                                        params={"priority": "replica", "checksum": created["checksum"]})
    assert status == 200 and reply["result"] is True, reply
    assert await client.points_all("docs") == points_expected(original)

    status, reply = await client.upload("/collections/fresh/snapshots/upload", data, params={"wait": "false"})
    assert status == 202 and reply["status"] == "accepted" and "result" not in reply

    async def recovered() -> bool:
        exists = (await client.ok("GET", "/collections/fresh/exists"))["exists"]
        return bool(exists) and await client.count("fresh") == 25
    await wait_until(recovered, 20.0, 0.05, what="the uploaded snapshot recovered into `fresh`")
    assert await client.points_all("fresh") == points_expected(original)
    assert not list((node.data_dir / "snapshots" / ".incoming").glob("*")), "upload temp file left behind"
