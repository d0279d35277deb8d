"""The snapshot file format: tar archives built as a stream of chunks, and read back defensively.

Shard snapshot (at the archive root):
    manifest.json            {"format_version", "kind": "shard", "collection", "shard_id", "points_count",
                              "last_seq", "digest", "config"}
    tombstones.msgpack       {id: version} of recent deletes (so older queued updates cannot resurrect)
    points/000000.msgpack    msgpack stream of [id, vector float32 bytes, payload, version], ~1 MiB each
Collection snapshot:
    manifest.json            {"format_version", "kind": "collection", "collection", "peer_id", "config",
                              "shards": [ids]}
    {shard_id}/manifest.json and {shard_id}/points/...   one directory per shard local to the peer
Full-storage snapshot:
    config.json              {"collections_mapping": {collection: file}, "collections_aliases": {}}
    <collection snapshot files>

Writing never needs the whole archive in memory: every member is at most about `chunk_bytes`, so the tar
header (which needs the size first) is written after each member is packed. Reading refuses absolute
paths, `..`, links and devices, checks counts and the content digest against the manifest, and never
writes anything to disk, so a malicious or truncated archive cannot touch existing data.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import msgpack

from node.errors import BadInput, ServiceError
from node.protocol import digest_hex, point_hash
from node.shard import PointRecord, ShardView

FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
MANIFEST = "manifest.json"
TOMBSTONES = "tombstones.msgpack"
BLOCK = 512


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
                  chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The tar members of one shard (no end-of-archive marker), each yielded as bytes."""
    yield tar_member(prefix + MANIFEST, json.dumps(manifest, sort_keys=True).encode())
    packer = msgpack.Packer(use_bin_type=True)
    yield tar_member(prefix + TOMBSTONES, packer.pack(view.tombstones))
    points = view.points
    parts: list[bytes] = []
    size = 0
    number = 0
    for point_id, (vector, payload, version) in points:
        packed = packer.pack([point_id, vector, payload, version])
        parts.append(packed)
        size += len(packed)
        if size >= chunk_bytes:
            yield tar_member(f"{prefix}points/{number:06d}.msgpack", b"".join(parts))
            number += 1
            parts, size = [], 0
    if parts:
        yield tar_member(f"{prefix}points/{number:06d}.msgpack", b"".join(parts))


def shard_manifest(collection: str, shard_id: int, info: dict[str, Any],
                   config: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "kind": "shard", "collection": collection,
            "shard_id": shard_id, "points_count": info["points_count"], "last_seq": info["seq"],
            "digest": info["digest"], "config": config}


def shard_tar_chunks(manifest: dict[str, Any], view: ShardView,
                     chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A whole shard snapshot as a stream of byte chunks of about `chunk_bytes`."""
    yield from shard_members(manifest, view, chunk_bytes=chunk_bytes)
    yield tar_end()


def collection_tar_chunks(manifest: dict[str, Any], shards: dict[int, tuple[dict[str, Any], ShardView]],
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    yield tar_member(MANIFEST, json.dumps(manifest, sort_keys=True).encode())
    for shard_id, (shard_manifest_value, view) in sorted(shards.items()):
        yield from shard_members(shard_manifest_value, view, prefix=f"{shard_id}/", chunk_bytes=chunk_bytes)
    yield tar_end()


# --- reading ---------------------------------------------------------------------------------------------

@dataclass
class ShardContent:
    manifest: dict[str, Any]
    points: list[tuple[Any, PointRecord]] = field(default_factory=list)
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


def json_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    file = archive.extractfile(member)
    assert file is not None
    try:
        value = json.loads(file.read())
    except ValueError as error:
        raise BadInput(f"Invalid snapshot: {member.name} is not valid JSON") from error
    if not isinstance(value, dict):
        raise BadInput(f"Invalid snapshot: {member.name} is not an object")
    return value


def points_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> list[tuple[Any, PointRecord]]:
    file = archive.extractfile(member)
    assert file is not None
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)
    unpacker.feed(file.read())
    points = []
    try:
        for point_id, vector, payload, version in unpacker:
            points.append((point_id, (bytes(vector), payload, int(version))))
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise ServiceError(f"Invalid snapshot: {member.name} is corrupt ({error})") from error
    return points


def shard_verify(content: ShardContent) -> None:
    """The points must match the manifest's count and content digest."""
    manifest = content.manifest
    if len(content.points) != manifest.get("points_count"):
        raise ServiceError(f"Invalid snapshot: shard {manifest.get('shard_id')} has {len(content.points)} "
                           f"points, its manifest says {manifest.get('points_count')} (truncated or corrupt)")
    total = 0
    for point_id, (vector, payload, _version) in content.points:
        total += point_hash(point_id, vector, payload)
    if digest_hex(total) != manifest.get("digest"):
        raise ServiceError(f"Invalid snapshot: content digest of shard {manifest.get('shard_id')} does not "
                           f"match its manifest (corrupt data)")


def snapshot_read(source: Path | IO[bytes]) -> SnapshotContent:
    """Read and verify a shard or collection snapshot. Raises BadInput / ServiceError; writes nothing."""
    try:
        archive = tarfile.open(source, mode="r:") if isinstance(source, Path) else tarfile.open(
            fileobj=source, mode="r:")
    except (tarfile.TarError, OSError) as error:
        raise ServiceError(f"Invalid snapshot: not a readable tar archive ({error})") from error
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ServiceError(f"Invalid snapshot: archive is truncated or corrupt ({error})") from error
        for member in members:
            member_check(member)
        by_name = {member.name: member for member in members if member.isreg()}
        if MANIFEST not in by_name:
            raise BadInput("Invalid snapshot: no manifest.json (not a shardsim snapshot)")
        manifest = json_member(archive, by_name[MANIFEST])
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BadInput(f"Invalid snapshot: unsupported format version {manifest.get('format_version')}")
        kind = manifest.get("kind")
        if kind == "shard":
            shards = {int(manifest["shard_id"]): shard_content(archive, by_name, "", manifest)}
        elif kind == "collection":
            shards = {}
            for shard_id in manifest.get("shards", []):
                prefix = f"{int(shard_id)}/"
                if prefix + MANIFEST not in by_name:
                    raise ServiceError(f"Invalid snapshot: shard {shard_id} is missing from the archive")
                shard_manifest_value = json_member(archive, by_name[prefix + MANIFEST])
                shards[int(shard_id)] = shard_content(archive, by_name, prefix, shard_manifest_value)
        else:
            raise BadInput(f"Invalid snapshot: unknown kind {kind!r}")
        return SnapshotContent(manifest, shards)


def shard_content(archive: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], prefix: str,
                  manifest: dict[str, Any]) -> ShardContent:
    content = ShardContent(manifest)
    names = sorted(name for name in by_name if name.startswith(prefix + "points/"))
    try:
        if prefix + TOMBSTONES in by_name:
            file = archive.extractfile(by_name[prefix + TOMBSTONES])
            assert file is not None
            tombstones = msgpack.unpackb(file.read(), raw=False, strict_map_key=False)
            if not isinstance(tombstones, dict):
                raise ServiceError("Invalid snapshot: tombstones are corrupt")
            content.tombstones = tombstones
        for name in names:
            content.points.extend(points_member(archive, by_name[name]))
    except (tarfile.TarError, OSError, EOFError, ValueError, msgpack.UnpackException) as error:
        raise ServiceError(f"Invalid snapshot: archive is truncated or corrupt ({error})") from error
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
