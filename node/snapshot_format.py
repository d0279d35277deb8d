"""The snapshot file format: tar archives built as a stream of chunks, and read back defensively.

Shard snapshot (at the archive root):
    manifest.json            {"format_version", "kind": "shard", "collection", "shard_id", "points_count",
                              "last_seq", "digest", "config"}
    tombstones.msgpack       {id: version} of recent deletes (so older queued updates cannot resurrect)
    points/000000.msgpack    one msgpack array of [id, [vector float32 bytes, payload, version]], ~1 MiB
                             each (packed by one C call per member, so packing runs at memory speed)
Collection snapshot:
    manifest.json            {"format_version", "kind": "collection", "collection", "peer_id", "config",
                              "shards": [ids]}
    {shard_id}/manifest.json and {shard_id}/points/...   one directory per shard local to the peer
Both end with:
    checksums.json           {"crc32": {member name: CRC-32 of its data}} for every member before it, so
                             any flipped bit (even in a point's version or a manifest) is detected; the
                             `.checksum` sidecar (SHA-256 of the whole file) is for users and transfers
Full-storage snapshot:
    config.json              {"collections_mapping": {collection: file}, "collections_aliases": {}}
    <collection snapshot files>

Writing never needs the whole archive in memory: every member is at most about `chunk_bytes`, so the tar
header (which needs the size first) is written after each member is packed. Reading refuses absolute
paths, `..`, links and devices, checks every member against `checksums.json` and the counts and content
digest against the manifest, and never writes anything to disk, so a malicious, truncated or corrupt
archive cannot touch existing data.
"""

from __future__ import annotations

import io
import itertools
import json
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import msgpack

from node.errors import BadInput, CorruptSnapshot
from node.protocol import digest_hex, point_hash
from node.shard import PointRecord, ShardView

FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
MANIFEST = "manifest.json"
TOMBSTONES = "tombstones.msgpack"
CHECKSUMS = "checksums.json"
BLOCK = 512

Member = tuple[str, bytes]


def tar_member(name: str, data: bytes, mtime: float | None = None) -> bytes:
    """One regular-file tar member (header, data, padding)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime if mtime is not None else time.time())
    info.mode = 0o644
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    padding = (BLOCK - len(data) % BLOCK) % BLOCK
    return header + data + b"\0" * padding


def tar_end() -> bytes:
    return b"\0" * (BLOCK * 2)


def shard_members(manifest: dict[str, Any], view: ShardView, prefix: str = "",
                  chunk_bytes: int = CHUNK_BYTES) -> Iterator[Member]:
    """The members `(name, data)` of one shard; points are grouped into members of about `chunk_bytes`."""
    yield prefix + MANIFEST, json.dumps(manifest, sort_keys=True).encode()
    packer = msgpack.Packer(use_bin_type=True)
    yield prefix + TOMBSTONES, packer.pack(view.tombstones)
    if view.packed is not None:
        yield from packed_members(view.packed, prefix, chunk_bytes)
        return
    records = iter(view.points.items())
    count = 1024  # records per member, adjusted so that members come out at about `chunk_bytes`
    for number in itertools.count():
        batch = list(itertools.islice(records, count))
        if not batch:
            return
        data = packer.pack(batch)  # one C call per member: [[id, [vector, payload, version]], ...]
        yield f"{prefix}points/{number:06d}.msgpack", data
        count = max(1, count * chunk_bytes // max(1, len(data)))


def array_header(count: int) -> bytes:
    """msgpack's header of an array of `count` elements."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def packed_members(packed: dict[Any, bytes], prefix: str, chunk_bytes: int) -> Iterator[Member]:
    """Points members from points already packed by the shard: the same bytes as packing the records,
    joined instead of packed again."""
    parts: list[bytes] = []
    size = 0
    number = 0
    for data in packed.values():
        parts.append(data)
        size += len(data)
        if size >= chunk_bytes:
            yield f"{prefix}points/{number:06d}.msgpack", b"".join([array_header(len(parts)), *parts])
            number += 1
            parts, size = [], 0
    if parts:
        yield f"{prefix}points/{number:06d}.msgpack", b"".join([array_header(len(parts)), *parts])


def tar_stream(members: Iterator[Member]) -> Iterator[bytes]:
    """Pack members as tar chunks, then the `checksums.json` trailer and the end-of-archive marker."""
    checksums: dict[str, int] = {}
    for name, data in members:
        checksums[name] = zlib.crc32(data)
        yield tar_member(name, data)
    yield tar_member(CHECKSUMS, json.dumps({"crc32": checksums}, sort_keys=True).encode()) + tar_end()


def shard_manifest(collection: str, shard_id: int, info: dict[str, Any],
                   config: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "kind": "shard", "collection": collection,
            "shard_id": shard_id, "points_count": info["points_count"], "last_seq": info["seq"],
            "digest": info["digest"], "config": config}


def shard_tar_chunks(manifest: dict[str, Any], view: ShardView,
                     chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A whole shard snapshot as a stream of byte chunks of about `chunk_bytes`."""
    return tar_stream(shard_members(manifest, view, chunk_bytes=chunk_bytes))


def collection_tar_chunks(manifest: dict[str, Any], shards: dict[int, tuple[dict[str, Any], ShardView]],
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    def members() -> Iterator[Member]:
        yield MANIFEST, json.dumps(manifest, sort_keys=True).encode()
        for shard_id, (shard_manifest_value, view) in sorted(shards.items()):
            yield from shard_members(shard_manifest_value, view, prefix=f"{shard_id}/", chunk_bytes=chunk_bytes)
    return tar_stream(members())


# --- reading ---------------------------------------------------------------------------------------------

@dataclass
class ShardContent:
    manifest: dict[str, Any]
    points: list[tuple[Any, PointRecord]] = field(default_factory=list)
    tombstones: dict[Any, int] = field(default_factory=dict)
    packed: list[bytes] = field(default_factory=list)  # each point's msgpack bytes, aligned with `points`


@dataclass
class SnapshotContent:
    manifest: dict[str, Any]
    shards: dict[int, ShardContent]


def member_check(member: tarfile.TarInfo) -> None:
    """Refuse anything but regular files and directories with relative, clean paths (no tar-slip)."""
    name = member.name
    path = PurePosixPath(name)
    if name.startswith("/") or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise BadInput(f"Invalid snapshot: unsafe path {name!r} in archive")
    if not (member.isreg() or member.isdir()):
        raise BadInput(f"Invalid snapshot: member {name!r} is a link or a device, which is refused")


class Members:
    """Reads members' data by name, each checked against the CRC-32 listed in `checksums.json`."""

    def __init__(self, archive: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo]) -> None:
        self.archive = archive
        self.by_name = by_name
        if CHECKSUMS not in by_name:
            raise CorruptSnapshot(f"Invalid snapshot: no {CHECKSUMS} (truncated, or not a shardsim snapshot)")
        listed = self.json_raw(CHECKSUMS).get("crc32")
        if not isinstance(listed, dict) or set(listed) != set(by_name) - {CHECKSUMS}:
            raise CorruptSnapshot(f"Invalid snapshot: {CHECKSUMS} does not list the archive's members (corrupt)")
        self.checksums: dict[str, int] = listed

    def raw(self, name: str) -> bytes:
        try:
            file = self.archive.extractfile(self.by_name[name])
            assert file is not None
            return file.read()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CorruptSnapshot(f"Invalid snapshot: archive is truncated or corrupt ({error})") from error

    def data(self, name: str) -> bytes:
        data = self.raw(name)
        if zlib.crc32(data) != self.checksums[name]:
            raise CorruptSnapshot(f"Invalid snapshot: {name} does not match its checksum (corrupt data)")
        return data

    def json_raw(self, name: str) -> dict[str, Any]:
        return json_value(name, self.raw(name))

    def json(self, name: str) -> dict[str, Any]:
        return json_value(name, self.data(name))


def json_value(name: str, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise CorruptSnapshot(f"Invalid snapshot: {name} is not valid JSON") from error
    if not isinstance(value, dict):
        raise CorruptSnapshot(f"Invalid snapshot: {name} is not an object")
    return value


def points_decode(name: str, data: bytes) -> tuple[list[tuple[Any, PointRecord]], list[bytes]]:
    """The points of one member, and each point's packed bytes (sliced out, so the new shard does not have
    to pack them again). A malformed point is dropped, which the count check then reports."""
    points: list[tuple[Any, PointRecord]] = []
    packed: list[bytes] = []
    try:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data) + 16)
        unpacker.feed(data)
        count = unpacker.read_array_header()
        start = unpacker.tell()
        for _ in range(count):
            point_id, (vector, payload, version) = unpacker.unpack()
            end = unpacker.tell()
            if type(vector) is bytes and type(payload) is dict and type(version) is int:
                points.append((point_id, (vector, payload, version)))
                packed.append(data[start:end])
            start = end
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise CorruptSnapshot(f"Invalid snapshot: {name} is corrupt ({error})") from error
    return points, packed


def shard_verify(content: ShardContent) -> None:
    """The points must match the manifest's count and content digest."""
    manifest = content.manifest
    if len(content.points) != manifest.get("points_count"):  # (a point with a non-integer version was dropped)
        raise CorruptSnapshot(f"Invalid snapshot: shard {manifest.get('shard_id')} has {len(content.points)} "
                           f"points, its manifest says {manifest.get('points_count')} (truncated or corrupt)")
    total = 0
    for point_id, (vector, payload, _version) in content.points:
        total += point_hash(point_id, vector, payload)
    if digest_hex(total) != manifest.get("digest"):
        raise CorruptSnapshot(f"Invalid snapshot: content digest of shard {manifest.get('shard_id')} does not "
                           f"match its manifest (corrupt data)")


def snapshot_read(source: Path | IO[bytes]) -> SnapshotContent:
    """Read and verify a shard or collection snapshot. Raises BadInput / CorruptSnapshot; writes nothing."""
    try:
        archive = tarfile.open(source, mode="r:") if isinstance(source, Path) else tarfile.open(
            fileobj=source, mode="r:")
    except (tarfile.TarError, OSError) as error:
        raise CorruptSnapshot(f"Invalid snapshot: not a readable tar archive ({error})") from error
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CorruptSnapshot(f"Invalid snapshot: archive is truncated or corrupt ({error})") from error
        for member in members:
            member_check(member)
        by_name = {member.name: member for member in members if member.isreg()}
        if MANIFEST not in by_name:
            raise BadInput("Invalid snapshot: no manifest.json (not a shardsim snapshot)")
        files = Members(archive, by_name)
        manifest = files.json(MANIFEST)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BadInput(f"Invalid snapshot: unsupported format version {manifest.get('format_version')}")
        kind = manifest.get("kind")
        if kind == "shard":
            shards = {int(manifest["shard_id"]): shard_content(files, "", manifest)}
        elif kind == "collection":
            shards = {}
            for shard_id in manifest.get("shards", []):
                prefix = f"{int(shard_id)}/"
                if prefix + MANIFEST not in by_name:
                    raise CorruptSnapshot(f"Invalid snapshot: shard {shard_id} is missing from the archive")
                shards[int(shard_id)] = shard_content(files, prefix, files.json(prefix + MANIFEST))
        else:
            raise BadInput(f"Invalid snapshot: unknown kind {kind!r}")
        return SnapshotContent(manifest, shards)


def shard_content(files: Members, prefix: str, manifest: dict[str, Any]) -> ShardContent:
    content = ShardContent(manifest)
    names = sorted(name for name in files.by_name if name.startswith(prefix + "points/"))
    if prefix + TOMBSTONES in files.by_name:
        try:
            tombstones = msgpack.unpackb(files.data(prefix + TOMBSTONES), raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as error:
            raise CorruptSnapshot(f"Invalid snapshot: tombstones are corrupt ({error})") from error
        if not isinstance(tombstones, dict):
            raise CorruptSnapshot("Invalid snapshot: tombstones are corrupt")
        content.tombstones = tombstones
    for name in names:
        points, packed = points_decode(name, files.data(name))
        content.points.extend(points)
        content.packed.extend(packed)
    shard_verify(content)
    return content


def full_tar_write(path: Path, collection_files: dict[str, Path]) -> None:
    """A full-storage snapshot: each collection's snapshot file plus config.json."""
    with tarfile.open(path, mode="w:", format=tarfile.USTAR_FORMAT) as archive:
        config = {"collections_mapping": {name: file.name for name, file in collection_files.items()},
                  "collections_aliases": {}}
        data = json.dumps(config, sort_keys=True).encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(data))
        for file in collection_files.values():
            archive.add(file, arcname=file.name, recursive=False)
