"""The snapshot file format: tar archives built as a stream of chunks, and read back defensively.

Shard snapshot (at the archive root):
    manifest.json            {"format_version", "kind": "shard", "collection", "shard_id", "points_count",
                              "last_seq", "digest", "config"}
    tombstones.msgpack       {id: version} of recent deletes (so older queued updates cannot resurrect)
    index.msgpack            {"ids": [...], "lengths": [...], "versions": [...]}: the points in canonical id
                             order, the length of each one's bytes and its version
    points/000000.msgpack    the points' canonical bytes (`node.protocol.point_content`, each a msgpack
                             `[id, vectors, payload]`) back to back in that order, about 1 MiB per member;
                             all members together are what the content digest hashes
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

Format versions: 3 (written) holds every named dense and sparse vector of a point (`vectors` is the float32
bytes of the one unnamed vector, or a map `{name: float32 bytes | [u32 indices, f32 values]}`) and the
collection's `sparse_vectors` config; 2 (still read) held only the unnamed vector, whose points have the same
bytes in format 3, so a format-2 snapshot restores with its digest unchanged.

Writing never needs the whole archive in memory: every member is at most about `chunk_bytes`, so the tar
header (which needs the size first) is written after each member is packed. Reading refuses absolute
paths, `..`, links and devices, checks every member against `checksums.json`, the index and the content
digest against the manifest (one SHA-256 over the points members), and, for a snapshot from outside (not a
peer's transfer stream), decodes every point to check it is the one the index names. It never writes
anything to disk, so a malicious, truncated or corrupt archive cannot touch existing data.
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import mmap
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import msgpack

from node import clock
from node.errors import BadInput, CorruptSnapshot
from node.protocol import contents_digest, ids_sorted
from node.storage.shard import CorruptPoint, PointSet, ShardView, contents_slice, gc_paused, record_decode

FORMAT_VERSION = 3
FORMAT_VERSIONS_READ = (2, 3)
CHUNK_BYTES = 1 << 20
MANIFEST = "manifest.json"
TOMBSTONES = "tombstones.msgpack"
INDEX = "index.msgpack"
CHECKSUMS = "checksums.json"
BLOCK = 512

Member = tuple[str, bytes | memoryview]


def tar_member(name: str, data: bytes | memoryview, mtime: float | None = None) -> Iterator[bytes | memoryview]:
    """One regular-file tar member: header, data (as is, not copied), padding."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime if mtime is not None else clock.now())
    info.mode = 0o644
    padding = (BLOCK - len(data) % BLOCK) % BLOCK
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    yield data
    if padding:
        yield b"\0" * padding


def tar_end() -> bytes:
    return b"\0" * (BLOCK * 2)


def shard_members(manifest: dict[str, Any], view: ShardView, prefix: str = "",
                  chunk_bytes: int = CHUNK_BYTES) -> Iterator[Member]:
    """The members `(name, data)` of one shard: manifest, tombstones, index, then the points' bytes joined
    into members of about `chunk_bytes` (whole points only)."""
    points = view.points
    yield prefix + MANIFEST, json.dumps(manifest, sort_keys=True).encode()
    yield prefix + TOMBSTONES, msgpack.packb(view.tombstones, use_bin_type=True)
    lengths = [len(data) for data in points.contents]
    yield prefix + INDEX, msgpack.packb({"ids": points.ids, "lengths": lengths, "versions": points.versions},
                                        use_bin_type=True)
    if points.blocks is not None:  # restored from a snapshot: its points members, as they were
        for number, block in enumerate(points.blocks):
            yield f"{prefix}points/{number:06d}.msgpack", block
        return
    start = size = number = 0
    for end, length in enumerate(lengths, start=1):
        size += length
        if size >= chunk_bytes or end == len(lengths):
            yield f"{prefix}points/{number:06d}.msgpack", b"".join(points.contents[start:end])
            number += 1
            start, size = end, 0


def tar_stream(members: Iterator[Member]) -> Iterator[bytes | memoryview]:
    """Pack members as tar chunks, then the `checksums.json` trailer and the end-of-archive marker."""
    checksums: dict[str, int] = {}
    for name, data in members:
        checksums[name] = zlib.crc32(data)
        yield from tar_member(name, data)
    yield from tar_member(CHECKSUMS, json.dumps({"crc32": checksums}, sort_keys=True).encode())
    yield tar_end()


def shard_manifest(collection: str, shard_id: int, info: dict[str, Any],
                   config: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "kind": "shard", "collection": collection,
            "shard_id": shard_id, "points_count": info["points_count"], "last_seq": info["seq"],
            "digest": info["digest"], "config": config}


def shard_tar_chunks(manifest: dict[str, Any], view: ShardView,
                     chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | memoryview]:
    """A whole shard snapshot as a stream of byte chunks of about `chunk_bytes`."""
    return tar_stream(shard_members(manifest, view, chunk_bytes=chunk_bytes))


def collection_tar_chunks(manifest: dict[str, Any], shards: dict[int, tuple[dict[str, Any], ShardView]],
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | memoryview]:
    def members() -> Iterator[Member]:
        yield MANIFEST, json.dumps(manifest, sort_keys=True).encode()
        for shard_id, (shard_manifest_value, view) in sorted(shards.items()):
            yield from shard_members(shard_manifest_value, view, prefix=f"{shard_id}/", chunk_bytes=chunk_bytes)
    return tar_stream(members())


# --- reading ---------------------------------------------------------------------------------------------

@dataclass
class ShardContent:
    manifest: dict[str, Any]
    points: PointSet = field(default_factory=PointSet)
    tombstones: dict[Any, int] = field(default_factory=dict)


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

    def __init__(self, archive: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo],
                 buffer: memoryview | None = None) -> None:
        self.archive = archive
        self.by_name = by_name
        self.buffer = buffer  # the whole archive, when it is in memory: members are slices of it, not copies
        if CHECKSUMS not in by_name:
            raise CorruptSnapshot(f"Invalid snapshot: no {CHECKSUMS} (truncated, or not a shardsim snapshot)")
        listed = self.json_raw(CHECKSUMS).get("crc32")
        if not isinstance(listed, dict) or set(listed) != set(by_name) - {CHECKSUMS}:
            raise CorruptSnapshot(f"Invalid snapshot: {CHECKSUMS} does not list the archive's members (corrupt)")
        self.checksums: dict[str, int] = listed

    def raw(self, name: str) -> bytes | memoryview:
        info = self.by_name[name]
        if self.buffer is not None:
            data: bytes | memoryview = self.buffer[info.offset_data:info.offset_data + info.size]
        else:
            data = self.archive_read(info)
        if len(data) != info.size:
            raise CorruptSnapshot(f"Invalid snapshot: archive is truncated ({name} has {len(data)} of "
                                  f"{info.size} bytes)")
        return data

    def archive_read(self, info: tarfile.TarInfo) -> bytes:
        try:
            file = self.archive.fileobj  # a regular member's data is contiguous: one read, no wrapper
            assert file is not None
            file.seek(info.offset_data)
            return file.read(info.size)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CorruptSnapshot(f"Invalid snapshot: archive is truncated or corrupt ({error})") from error

    def data(self, name: str) -> bytes | memoryview:
        data = self.raw(name)
        if zlib.crc32(data) != self.checksums[name]:
            raise CorruptSnapshot(f"Invalid snapshot: {name} does not match its checksum (corrupt data)")
        return data

    def json_raw(self, name: str) -> dict[str, Any]:
        return json_value(name, self.raw(name))

    def json(self, name: str) -> dict[str, Any]:
        return json_value(name, self.data(name))


def json_value(name: str, data: bytes | memoryview) -> dict[str, Any]:
    try:
        value = json.loads(bytes(data))
    except ValueError as error:
        raise CorruptSnapshot(f"Invalid snapshot: {name} is not valid JSON") from error
    if not isinstance(value, dict):
        raise CorruptSnapshot(f"Invalid snapshot: {name} is not an object")
    return value


def index_check(manifest: dict[str, Any], index: Any) -> tuple[list[Any], list[int], list[int]]:
    """The index's ids, lengths and versions, refused unless well formed, in canonical order and as many as
    the manifest says."""
    shard = manifest.get("shard_id")
    if type(index) is not dict or not all(type(index.get(key)) is list for key in ("ids", "lengths", "versions")):
        raise CorruptSnapshot(f"Invalid snapshot: the index of shard {shard} is corrupt")
    ids, lengths, versions = index["ids"], index["lengths"], index["versions"]
    if not len(ids) == len(lengths) == len(versions) == manifest.get("points_count"):
        raise CorruptSnapshot(f"Invalid snapshot: shard {shard} has {len(ids)} points, its manifest says "
                              f"{manifest.get('points_count')} (truncated or corrupt)")
    if not set(map(type, itertools.chain(lengths, versions))) <= {int} or not set(map(type, ids)) <= {int, str} \
            or (lengths and min(lengths) <= 0):
        raise CorruptSnapshot(f"Invalid snapshot: the index of shard {shard} is corrupt")
    if ids_sorted(ids) != ids or len(set(ids)) != len(ids) or (ids and type(ids[0]) is int and ids[0] < 0):
        raise CorruptSnapshot(f"Invalid snapshot: the points of shard {shard} are not in id order or repeat")
    return ids, lengths, versions


def points_read(files: Members, names: list[str], manifest: dict[str, Any],
                lengths: list[int]) -> tuple[list[Any], list[Any]]:
    """Each point's bytes (slices of the members) and the members themselves, checking the content digest:
    one SHA-256 over the members, which also covers every bit their CRC-32s would (those are only read to
    name the corrupt member when the digest does not match)."""
    shard = manifest.get("shard_id")
    offsets = list(itertools.accumulate(lengths, initial=0))
    contents: list[Any] = []
    blocks = [files.raw(name) for name in names]
    digest_value = contents_digest(block for block in blocks if len(block))
    if digest_value != manifest.get("digest"):
        for name in names:
            files.data(name)  # raises for the member whose bytes changed
        raise CorruptSnapshot(f"Invalid snapshot: content digest of shard {shard} does not match its manifest "
                              f"(corrupt data)")
    slices_cut(names, blocks, offsets, lengths, contents)
    if len(contents) != len(lengths):
        raise CorruptSnapshot(f"Invalid snapshot: shard {shard} has {len(contents)} points, its index says "
                              f"{len(lengths)} (truncated or corrupt)")
    return contents, blocks


def slices_cut(names: list[str], blocks: list[Any], offsets: list[int], lengths: list[int],
               contents: list[Any]) -> None:
    """Append each point's bytes (a slice of its member) to `contents`; members must hold whole points."""
    for name, data in zip(names, blocks, strict=True):
        first = len(contents)
        last = bisect.bisect_left(offsets, offsets[first] + len(data))
        try:
            if last >= len(offsets) or offsets[last] != offsets[first] + len(data):
                raise ValueError("a point crosses the end of the member")
            contents.extend(contents_slice(memoryview(data), lengths[first:last]))
        except ValueError as error:
            raise CorruptSnapshot(f"Invalid snapshot: {name} does not match the index ({error})") from error


def file_mapped(path: Path) -> memoryview | None:
    """The file mapped read-only with its pages loaded up front (MAP_POPULATE): members and points are then
    slices of the page cache, not copies, and touching them costs no page fault each. The mapping outlives
    the file's removal and is released when the last slice is."""
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return None
            mapped = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                               prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None  # read through the archive instead
    return memoryview(mapped)


def snapshot_read(source: Path | bytes, check_points: bool = True) -> SnapshotContent:
    """Read and verify a shard or collection snapshot. Raises BadInput / CorruptSnapshot; writes nothing.

    `check_points=False` (a peer's transfer stream, already checked by CRC-32 and the content digest) skips
    decoding every point to match it with the index; points are then checked when first decoded."""
    buffer = file_mapped(source) if isinstance(source, Path) else memoryview(source)
    try:
        archive = tarfile.open(source, mode="r:") if isinstance(source, Path) else tarfile.open(
            fileobj=io.BytesIO(source), mode="r:")
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
        files = Members(archive, by_name, buffer)
        manifest = files.json(MANIFEST)
        if manifest.get("format_version") not in FORMAT_VERSIONS_READ:
            raise BadInput(f"Invalid snapshot: unsupported format version {manifest.get('format_version')}")
        kind = manifest.get("kind")
        if kind == "shard":
            shards = {shard_id_check(manifest.get("shard_id")): shard_content(files, "", manifest, check_points)}
        elif kind == "collection":
            shards = {}
            listed = manifest.get("shards", [])
            if type(listed) is not list or len(set(map(shard_id_check, listed))) != len(listed):
                raise BadInput("Invalid snapshot: its manifest's `shards` is not a list of distinct shard ids")
            for shard_id in listed:
                prefix = f"{shard_id}/"
                if prefix + MANIFEST not in by_name:
                    raise CorruptSnapshot(f"Invalid snapshot: shard {shard_id} is missing from the archive")
                shard_manifest_value = files.json(prefix + MANIFEST)
                if shard_manifest_value.get("shard_id") != shard_id:
                    raise BadInput(f"Invalid snapshot: the data under {prefix} is of shard "
                                   f"{shard_manifest_value.get('shard_id')!r}")
                shards[shard_id] = shard_content(files, prefix, shard_manifest_value, check_points)
        else:
            raise BadInput(f"Invalid snapshot: unknown kind {kind!r}")
        return SnapshotContent(manifest, shards)


def shard_id_check(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise BadInput(f"Invalid snapshot: shard id {value!r} is not a non-negative integer")
    return value


def shard_content(files: Members, prefix: str, manifest: dict[str, Any], check_points: bool) -> ShardContent:
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
    if prefix + INDEX not in files.by_name:
        raise CorruptSnapshot(f"Invalid snapshot: shard {manifest.get('shard_id')} has no {INDEX}")
    try:
        index = msgpack.unpackb(files.data(prefix + INDEX), raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise CorruptSnapshot(f"Invalid snapshot: the index is corrupt ({error})") from error
    ids, lengths, versions = index_check(manifest, index)
    with gc_paused():
        contents, blocks = points_read(files, names, manifest, lengths)
    if check_points:
        try:
            for point_id, data in zip(ids, contents, strict=True):
                record_decode(point_id, data, 0)
        except CorruptPoint as error:
            raise CorruptSnapshot(f"Invalid snapshot: {error.message}") from error
    content.points = PointSet(ids, contents, versions, blocks, manifest["digest"] if contents else None)
    return content


def full_tar_write(path: Path, collection_files: dict[str, Path]) -> None:
    """A full-storage snapshot: each collection's snapshot file plus config.json."""
    with tarfile.open(path, mode="w:", format=tarfile.USTAR_FORMAT) as archive:
        config = {"collections_mapping": {name: file.name for name, file in collection_files.items()},
                  "collections_aliases": {}}
        data = json.dumps(config, sort_keys=True).encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        info.mtime = int(clock.now())
        archive.addfile(info, io.BytesIO(data))
        for file in collection_files.values():
            archive.add(file, arcname=file.name, recursive=False)
