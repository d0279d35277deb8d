"""Nothing lost or corrupted by bad input: traversing names, tar-slip archives, truncated and bit-flipped
snapshots, oversized uploads, and the `api-key` guard. Every refusal leaves the old data unchanged."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from node.snapshots.format import FORMAT_VERSION
from tests.helpers import points_make
from tests.node.client import NodeClient, files_under, tar_bytes
from tests.processes import NodeProcess

UPLOAD = "/collections/docs/snapshots/upload"
SHARD_UPLOAD = "/collections/docs/shards/0/snapshots/upload"


async def docs_with_data(client: NodeClient) -> dict:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(40)))
    return await client.points_all("docs")


@pytest.mark.parametrize("name", ["..%2F..%2Fnode.json", "..", "%2E%2E", "a%2Fb.snapshot",
                                  "..%2Fdocs%2Fx.snapshot", "%2E%2E%2F%2E%2E%2Fnode.json",
                                  ".x.snapshot.partial", "x.snapshot.checksum"])
async def test_traversing_snapshot_names_are_404(client: NodeClient, node: NodeProcess, name: str) -> None:
    await docs_with_data(client)
    created = await client.ok("POST", "/collections/docs/snapshots")
    await client.ok("POST", "/collections/docs/shards/0/snapshots")
    await client.ok("POST", "/snapshots")
    before = files_under(node.data_dir)
    for base in ("/collections/docs/snapshots", "/snapshots", "/collections/docs/shards/0/snapshots"):
        for method in ("GET", "DELETE"):
            status, _ = await client.call(method, f"{base}/{name}")
            assert status == 404, (method, base, name, status)
    assert files_under(node.data_dir) == before
    status, data, _ = await client.download(f"/collections/docs/snapshots/{created['name']}")
    assert status == 200


def manifest_for(kind: str = "shard") -> bytes:
    manifest = {"format_version": FORMAT_VERSION, "kind": kind, "collection": "docs", "shard_id": 0, "points_count": 0,
                "last_seq": 0, "digest": "0" * 64, "config": {"vectors": {"size": 4, "distance": "Cosine"},
                                                            "shard_number": 1}}
    return json.dumps(manifest).encode()


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


SLIP_ARCHIVES = {
    "absolute": [("manifest.json", manifest_for()), ("/tmp/shardsim-slip-absolute", b"x")],
    "dotdot": [("manifest.json", manifest_for()), ("../../slip-dotdot", b"x")],
    "dotdot-inner": [("manifest.json", manifest_for()), ("points/../../slip-inner", b"x")],
    "symlink": [("manifest.json", manifest_for()), special("points/000000.msgpack", tarfile.SYMTYPE,
                                                           "/etc/passwd")],
    "hardlink": [("manifest.json", manifest_for()), special("points/000000.msgpack", tarfile.LNKTYPE,
                                                            "/etc/passwd")],
    "device": [("manifest.json", manifest_for()), special("points/dev", tarfile.CHRTYPE)],
    "fifo": [("manifest.json", manifest_for()), special("points/fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("kind", sorted(SLIP_ARCHIVES))
async def test_tar_slip_archives_are_refused(client: NodeClient, node: NodeProcess, tmp_path: Path,
                                             kind: str) -> None:
    before = await docs_with_data(client)
    files_before = files_under(node.data_dir)
    data = tar_bytes(SLIP_ARCHIVES[kind])  # type: ignore[arg-type]
    for path in (SHARD_UPLOAD, UPLOAD):
        status, reply = await client.upload(path, data)
        assert status in (400, 500), reply
        assert "unsafe path" in reply["status"]["error"] or "link or a device" in reply["status"]["error"]
    assert await client.points_all("docs") == before
    assert files_under(node.data_dir) == files_before
    assert not Path("/tmp/shardsim-slip-absolute").exists()
    assert not (node.data_dir.parent / "slip-dotdot").exists()
    assert not (node.data_dir / "snapshots" / "slip-inner").exists()


async def test_truncated_upload_is_refused(client: NodeClient) -> None:
    before = await docs_with_data(client)
    _, data, _ = await client.download("/collections/docs/shards/0/snapshot")
    await client.points_upsert("docs", points_make(range(40), seed=4, tag="newer"))
    before = await client.points_all("docs")
    for cut in (len(data) // 2, len(data) - 1024 - 7, 700):
        status, reply = await client.upload(SHARD_UPLOAD, data[:cut])
        assert status in (400, 500) and "Invalid snapshot" in reply["status"]["error"], (cut, reply)
    assert await client.points_all("docs") == before


def data_offsets(data: bytes) -> list[int]:
    """Offsets inside the data of the points members (where a flipped bit is real corruption)."""
    offsets = []
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if "points/" in member.name and member.size > 64:
                offsets += [member.offset_data + member.size // 3, member.offset_data + member.size - 5]
            if member.name.endswith("manifest.json"):
                offsets.append(member.offset_data + member.size // 2)
    return offsets


async def test_bit_flipped_snapshot_is_refused(client: NodeClient) -> None:
    await docs_with_data(client)
    created = await client.ok("POST", "/collections/docs/snapshots")
    _, data, _ = await client.download(f"/collections/docs/snapshots/{created['name']}")
    await client.points_upsert("docs", points_make(range(40), seed=4, tag="newer"))
    before = await client.points_all("docs")
    offsets = data_offsets(data)
    assert len(offsets) >= 3
    for offset in offsets:
        flipped = bytearray(data)
        flipped[offset] ^= 0x10
        status, reply = await client.upload(UPLOAD, bytes(flipped))
        assert status in (400, 500), (offset, reply)
    assert await client.points_all("docs") == before
    header = bytearray(data)
    header[100] ^= 0x01  # inside the first tar header: its checksum no longer matches
    status, reply = await client.upload(UPLOAD, bytes(header))
    assert status in (400, 500)
    assert await client.points_all("docs") == before


async def test_oversized_upload_is_413_and_leaves_no_temp_file(node_factory) -> None:
    node = node_factory("small", peer_id=1, extra_args=["--max-upload-bytes", "4096"])
    async with NodeClient(node.url) as client:
        before = await docs_with_data(client)
        _, data, _ = await client.download("/collections/docs/shards/0/snapshot")
        assert len(data) > 4096
        status, reply = await client.upload(SHARD_UPLOAD, data)
        assert status == 413, reply
        status, reply = await client.upload(UPLOAD, b"\0" * 100_000)
        assert status == 413
        assert await client.points_all("docs") == before
    leftovers = [path for path in (node.data_dir / "snapshots").rglob("*") if path.is_file()]
    assert leftovers == [], leftovers


async def test_api_key_guards_everything_but_health(node_factory) -> None:
    node = node_factory("guarded", peer_id=1, extra_args=["--api-key", "s3cret"])
    async with NodeClient(node.url) as anonymous:
        for path in ("/healthz", "/livez", "/readyz", "/"):  # Qdrant's whitelist (node/apikey.py)
            status, _ = await anonymous.call("GET", path)
            assert status == 200
        for method, path in (("GET", "/collections"), ("GET", "/snapshots"), ("POST", "/snapshots"),
                             ("GET", "/collections/docs/shards/0/snapshot"), ("GET", "/nowhere")):
            status, reply = await anonymous.call(method, path)
            assert status == 401, (method, path, reply)
    async with NodeClient(node.url, headers={"api-key": "wrong"}) as wrong:
        status, _ = await wrong.call("GET", "/collections")
        assert status == 401
    async with NodeClient(node.url, headers={"Authorization": "Bearer wrong"}) as wrong_bearer:
        status, _ = await wrong_bearer.call("GET", "/collections")
        assert status == 401
    async with NodeClient(node.url, headers={"api-key": "s3cret"}) as keyed:
        await keyed.collection_create("docs")
        assert await keyed.ok("GET", "/collections") == {"collections": [{"name": "docs"}]}
    async with NodeClient(node.url, headers={"Authorization": "Bearer s3cret"}) as bearer:
        assert (await bearer.ok("POST", "/snapshots"))["name"].startswith("full-snapshot-")
        status, _, _ = await bearer.download("/collections/docs/shards/0/snapshot")
        assert status == 200
