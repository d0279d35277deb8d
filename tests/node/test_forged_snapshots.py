"""Forged collection snapshots (issue 14, defect 7): archives whose checksums are all valid but whose
collection config or shard list lies. Each is refused with 400 before anything is written: no collection is
created, no file or directory is left in the data or snapshots directories, and existing data is unchanged.
"""

from __future__ import annotations

import io
import json
import tarfile
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient, files_under, tar_bytes
from tests.processes import NodeProcess

Members = dict[str, bytes]


def members_of(data: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


def rebuilt(members: Members) -> bytes:
    """An archive from members, with checksums.json recomputed: well formed, every checksum valid."""
    members = {name: data for name, data in members.items() if name != "checksums.json"}
    checksums = {name: zlib.crc32(data) for name, data in members.items()}
    return tar_bytes([*members.items(), ("checksums.json", json.dumps({"crc32": checksums}).encode())])


def manifest_changed(change: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def forge(members: Members) -> None:
        manifest = json.loads(members["manifest.json"])
        change(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()
    return forge


def config_set(**values: Any) -> Callable[[Members], None]:
    return manifest_changed(lambda manifest: manifest["config"].update(values))


def shard_dropped(members: Members) -> None:
    for name in [name for name in members if name.startswith("1/")]:
        del members[name]
    manifest = json.loads(members["manifest.json"])
    manifest["shards"] = [0]
    members["manifest.json"] = json.dumps(manifest).encode()


def shard_renamed(members: Members) -> None:
    """Shard 1's data listed as shard 5 (the config promises shards 0 and 1)."""
    for name in [name for name in members if name.startswith("1/")]:
        members["5/" + name[2:]] = members.pop(name)
    manifest = json.loads(members["manifest.json"])
    manifest["shards"] = [0, 5]
    members["manifest.json"] = json.dumps(manifest).encode()


FORGERIES: dict[str, Callable[[Members], None]] = {
    "shard_number 0": config_set(shard_number=0),
    "shard_number a string": config_set(shard_number="2"),
    "replication_factor -1": config_set(replication_factor=-1),
    "vector size -3, distance Nope": config_set(vectors={"size": -3, "distance": "Nope"}),
    "distance Nope": config_set(vectors={"size": 4, "distance": "Nope"}),
    "no vectors": manifest_changed(lambda manifest: manifest["config"].pop("vectors")),  # its shards' have them
    "vectors a list": config_set(vectors=[4]),
    "named vector of size 0": config_set(vectors={"a": {"size": 0, "distance": "Dot"}}),
    "sparse vectors not a map": config_set(sparse_vectors=["words"]),
    "config not an object": manifest_changed(lambda manifest: manifest.update(config=[1, 2])),
    "a shard missing": shard_dropped,
    "a shard out of range": shard_renamed,
    "shard list not a list": manifest_changed(lambda manifest: manifest.update(shards="0,1")),
}


async def snapshot_two_shards(client: NodeClient) -> bytes:
    await client.collection_create("docs", shard_number=2)
    await client.points_upsert("docs", points_make(range(100)))
    created = await client.ok("POST", "/collections/docs/snapshots")
    status, data, _ = await client.download(f"/collections/docs/snapshots/{created['name']}")
    assert status == 200
    return data


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_forged_snapshot_is_refused_and_leaves_nothing(node: NodeProcess, client: NodeClient,
                                                            forgery: str) -> None:
    original = await snapshot_two_shards(client)
    members = members_of(original)
    FORGERIES[forgery](members)
    forged = rebuilt(members)
    before = files_under(node.data_dir)
    expected = await client.points_all("docs")
    for target in ("forged", "docs"):
        status, reply = await client.upload(f"/collections/{target}/snapshots/upload", forged)
        assert status == 400, (target, reply)
        assert reply["status"]["error"].startswith("Wrong input: "), reply
        status, reply = await client.call("GET", "/collections/forged")
        assert status == 404, f"a refused snapshot left collection `forged` behind: {reply}"
        assert files_under(node.data_dir) == before
        assert not list((node.data_dir / "collections").glob("forged*"))
    assert await client.points_all("docs") == expected
    await client.reconnect()
    node.kill()
    node.start()
    await client.reconnect()
    assert (await client.ok("GET", "/collections"))["collections"] == [{"name": "docs"}]
    assert await client.points_all("docs") == expected


async def test_the_untouched_snapshot_is_accepted(node: NodeProcess, client: NodeClient) -> None:
    """The forging helpers change nothing by themselves: the same archive rebuilt is recovered."""
    original = await snapshot_two_shards(client)
    status, reply = await client.upload("/collections/copy/snapshots/upload", rebuilt(members_of(original)))
    assert status == 200, reply
    assert await client.points_all("copy") == points_expected(points_make(range(100)))
