"""Full-storage snapshots (docs/qdrant-semantics.md sections 1.3 and 2): `full-snapshot-{ts}.snapshot` in
the snapshots root, a tar of every collection's snapshot file plus `config.json`; create, list, download,
delete."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile

from node.retry import wait_until
from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

FULL_RE = re.compile(r"^full-snapshot-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.snapshot$")


async def test_full_snapshot_lifecycle(client: NodeClient, node: NodeProcess) -> None:
    for name in ("alpha", "beta"):
        await client.collection_create(name)
        await client.points_upsert(name, points_make(range(10)))
    assert await client.ok("GET", "/snapshots") == []
    created = await client.ok("POST", "/snapshots")
    assert FULL_RE.match(created["name"]) and created["size"] > 0
    assert (node.data_dir / "snapshots" / (created["name"] + ".checksum")).read_text() == created["checksum"]
    assert await client.ok("GET", "/snapshots") == [created]

    status, data, headers = await client.download(f"/snapshots/{created['name']}")
    assert status == 200 and hashlib.sha256(data).hexdigest() == created["checksum"]
    assert created["name"] in headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        config_file = archive.extractfile("config.json")
        assert config_file is not None
        config = json.loads(config_file.read())
    assert sorted(config["collections_mapping"]) == ["alpha", "beta"]
    assert config["collections_aliases"] == {}
    assert sorted(names) == sorted(["config.json", *config["collections_mapping"].values()])
    assert all(re.match(r"^(alpha|beta)-1-\d{4}(-\d{2}){5}\.snapshot$", file)
               for file in config["collections_mapping"].values())

    assert await client.ok("DELETE", f"/snapshots/{created['name']}") is True
    assert await client.ok("GET", "/snapshots") == []
    leftovers = [path.name for path in (node.data_dir / "snapshots").iterdir() if path.name.startswith(".full")]
    assert leftovers == [], "staging files of the full snapshot were left behind"


async def test_full_snapshot_wait_false_and_errors(client: NodeClient) -> None:
    await client.collection_create("alpha")
    status, reply = await client.call("POST", "/snapshots", params={"wait": "false"})
    assert status == 202 and reply["status"] == "accepted" and "result" not in reply
    listed = await client.wait_listed("/snapshots", 1)
    assert FULL_RE.match(listed[0]["name"])

    status, reply = await client.call("DELETE", f"/snapshots/{listed[0]['name']}", params={"wait": "false"})
    assert status == 202 and "result" not in reply

    async def deleted() -> bool:
        return await client.ok("GET", "/snapshots") == []
    await wait_until(deleted, 20.0, 0.05, what="the full snapshot deleted")

    status, reply = await client.call("DELETE", "/snapshots/full-snapshot-x.snapshot")
    assert status == 404 and reply["status"]["error"] == "Not found: Snapshot full-snapshot-x.snapshot not found"
    status, data, _ = await client.download("/snapshots/full-snapshot-x.snapshot")
    assert status == 404 and data == b"Not found: Snapshot full-snapshot-x.snapshot not found"


async def test_full_snapshot_lists_only_full_snapshots(client: NodeClient) -> None:
    await client.collection_create("alpha")
    await client.ok("POST", "/collections/alpha/snapshots")
    await client.ok("POST", "/snapshots")
    assert len(await client.ok("GET", "/snapshots")) == 1
    assert len(await client.ok("GET", "/collections/alpha/snapshots")) == 1
