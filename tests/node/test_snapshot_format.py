"""The snapshot format alone (node/snapshots/format.py): what a shard writes reads back equal, the content
digest is one hash over the points members, and a snapshot whose parts disagree is refused before anything
is restored. No processes: these are the checks every recovery and transfer relies on."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from node.errors import CorruptSnapshot
from node.protocol import point_content, shard_digest, vector_pack
from node.snapshots.format import shard_manifest, shard_tar_chunks, snapshot_read
from node.storage.shard import CorruptPoint, Shard, record_decode
from tests.node.client import tar_bytes

CONFIG = {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 1}
OPENED: list[Shard] = []


@pytest.fixture(autouse=True)
def shards_closed() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def shard_open(path: Path) -> Shard:
    shard = Shard.open(path, "docs", 0)
    OPENED.append(shard)
    return shard


def shard_with(tmp_path: Path, count: int) -> Shard:
    shard = shard_open(tmp_path / "src")
    for point_id in range(count):
        shard._put(point_id, (vector_pack([float(point_id), 0.5]), {"n": point_id, "tag": "t"}, 100 + point_id))
    shard._put("0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60", (vector_pack([1.0, 1.0]), {}, 7))
    return shard


def stream_of(shard: Shard, chunk_bytes: int = 1 << 20) -> bytes:
    view = shard.view()
    return b"".join(shard_tar_chunks(shard_manifest("docs", 0, view.info, CONFIG), view, chunk_bytes))


def test_round_trip_keeps_every_point_and_the_digest(tmp_path: Path) -> None:
    shard = shard_with(tmp_path, 3000)
    data = stream_of(shard, chunk_bytes=4096)  # many members: points must be cut at member ends
    content = snapshot_read(data).shards[0]
    assert content.manifest["digest"] == shard.digest != "0" * 64
    assert len(content.points.ids) == 3001 and content.points.ids[-1] == "0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"
    for point_id, data_bytes, version in zip(content.points.ids, content.points.contents, content.points.versions,
                                             strict=True):
        assert record_decode(point_id, data_bytes, version) == shard.points[point_id]
    expected = shard_digest((pid, record[0], record[1]) for pid, record in shard.points.items())
    assert shard.digest == expected


def test_digest_does_not_depend_on_write_order_or_payload_key_order(tmp_path: Path) -> None:
    first = shard_open(tmp_path / "a")
    second = shard_open(tmp_path / "b")
    for point_id in range(50):
        first._put(point_id, (vector_pack([1.0, 2.0]), {"a": 1, "b": {"y": 2, "x": 1}}, 5))
    for point_id in reversed(range(50)):
        second._put(point_id, (vector_pack([1.0, 2.0]), {"b": {"x": 1, "y": 2}, "a": 1}, 9))
    assert first.digest == second.digest, "same ids, vectors and payloads: same digest (versions aside)"
    second._put(7, (vector_pack([1.0, 2.0]), {"a": 2, "b": {"x": 1, "y": 2}}, 10))
    assert first.digest != second.digest


def members_of(data: bytes) -> dict[str, bytes]:
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


def rebuilt(members: dict[str, bytes]) -> bytes:
    """An archive from members, with checksums.json recomputed (a well-formed file that lies inside)."""
    members = {name: data for name, data in members.items() if name != "checksums.json"}
    checksums = {name: zlib.crc32(data) for name, data in members.items()}
    return tar_bytes([*members.items(), ("checksums.json", json.dumps({"crc32": checksums}).encode())])


def test_a_flipped_bit_in_the_points_is_refused(tmp_path: Path) -> None:
    data = bytearray(stream_of(shard_with(tmp_path, 200)))
    data[data.index(b"\xc4\x08") + 5] ^= 0x01  # inside the first point's vector bytes
    with pytest.raises(CorruptSnapshot, match="checksum"):
        snapshot_read(bytes(data))


def test_points_that_do_not_match_the_digest_are_refused(tmp_path: Path) -> None:
    members = members_of(stream_of(shard_with(tmp_path, 200)))
    points = members["points/000000.msgpack"]
    first = point_content(0, vector_pack([0.0, 0.5]), {"n": 0, "tag": "t"})
    assert points.startswith(first)
    members["points/000000.msgpack"] = point_content(0, vector_pack([9.0, 0.5]), {"n": 0, "tag": "t"}) + \
        points[len(first):]
    with pytest.raises(CorruptSnapshot, match="content digest"):
        snapshot_read(rebuilt(members))


def test_an_index_that_names_other_points_is_refused_for_files_from_outside(tmp_path: Path) -> None:
    members = members_of(stream_of(shard_with(tmp_path, 5)))
    index = msgpack.unpackb(members["index.msgpack"], raw=False)
    index["ids"][4] = 5  # point 4's bytes are now said to be point 5 (the ids still in order)
    members["index.msgpack"] = msgpack.packb(index)
    with pytest.raises(CorruptSnapshot, match="another point"):
        snapshot_read(rebuilt(members))
    # a peer's transfer stream skips decoding every point (CRC and digest checked); a point that is not
    # what the index says is then refused when first read, never served as another point
    content = snapshot_read(rebuilt(members), check_points=False).shards[0]
    with pytest.raises(CorruptPoint):
        record_decode(content.points.ids[4], content.points.contents[4], 0)


def test_an_index_out_of_order_or_with_a_repeated_id_is_refused(tmp_path: Path) -> None:
    members = members_of(stream_of(shard_with(tmp_path, 5)))
    for ids in ([1, 0, 2, 3, 4, "0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"],
                [0, 0, 2, 3, 4, "0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"]):
        index = msgpack.unpackb(members["index.msgpack"], raw=False)
        index["ids"] = ids
        changed = {**members, "index.msgpack": msgpack.packb(index)}
        with pytest.raises(CorruptSnapshot, match="id order or repeat"):
            snapshot_read(rebuilt(changed))


def test_the_digest_is_one_sha256_over_the_points_members(tmp_path: Path) -> None:
    shard = shard_with(tmp_path, 500)
    members = members_of(stream_of(shard, chunk_bytes=2048))
    names = sorted(name for name in members if name.startswith("points/"))
    assert len(names) > 5
    assert hashlib.sha256(b"".join(members[name] for name in names)).hexdigest() == shard.digest


def test_a_corrupt_base_file_is_reported_not_loaded(tmp_path: Path) -> None:
    import asyncio
    shard = shard_with(tmp_path, 100)
    asyncio.run(shard.compact())
    shard.close()
    base = tmp_path / "src" / "points.msgpack"
    data = bytearray(base.read_bytes())
    data[-10] ^= 0xFF
    base.write_bytes(bytes(data))
    with pytest.raises(Exception, match="corrupt"):
        Shard.open(tmp_path / "src", "docs", 0)


def test_points_deleted_during_an_iteration_are_skipped(tmp_path: Path) -> None:
    shard = shard_with(tmp_path, 10)
    seen = []
    for point_id, _record in shard.points.items():
        seen.append(point_id)
        if point_id == 2:
            shard._remove(7)  # as a write landing while a reader walks the shard between awaits
    assert 7 not in seen and len(seen) == 10 and 8 in seen
