"""One shard's store: points in memory, a write-ahead log and a base file on disk, and its content digest.

Every point is kept in its canonical bytes (`node.protocol.point_content`: msgpack `[id, vectors, payload]`,
payload keys sorted) with its version beside it; its record `(vectors, payload: dict, version: int)` is
decoded from those bytes on first use (`Records`); vectors are in canonical form (`node.protocol.Vectors`:
the float32 bytes of the one unnamed vector, or a map of named dense and sparse vectors). Snapshots stream the canonical bytes as
they are and the digest is one SHA-256 over them in id order, so neither needs per-point work, and a shard
restored from a snapshot adopts the snapshot's bytes without decoding them.

Every update carries a version (a hybrid clock, see `version_clock`) and gets the shard's next local
sequence number (`seq`); it is checked (node/storage/operations.py), appended to the WAL, applied in memory (last writer wins per point, deletes
leave tombstones) and, for durable writes, fsynced before the caller is answered. The digest is computed
when asked for and kept until the next write. Hooks let a transfer queue every update applied while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from node import clock
from node.errors import ServiceError
from node.protocol import (
    EMPTY_DIGEST,
    PointId,
    Vectors,
    contents_digest,
    ids_sorted,
    payload_sorted,
    point_content,
)
from node.storage.operations import (
    MalformedOperation,
    Operation,
    OperationSchema,
    log_record_check,
    operation_check,
    point_changes,
)
from node.storage.wal import LogDamage, LogDamaged, Wal, damage_marker_read, damage_marker_write

BASE_FILE = "points.msgpack"
BASE_MAGIC = b"SSBASE2\n"
BASE_FORMAT_VERSION = 2

PointRecord = tuple[Vectors, dict[str, Any], int]
Content = bytes | memoryview  # one point's canonical bytes (a slice of a snapshot or base file after a restore)
TOMBSTONE_RETENTION_S = 600
VERSION_PEER_BITS = 12


def version_clock(peer_id: int = 0) -> int:
    """A hybrid-clock version: microseconds since the epoch, with the writer's peer id in the low bits.

    Versions order writes across nodes (last writer wins), so replicas converge whatever the order in
    which forwarded updates, queued transfer updates and snapshots reach them.
    """
    return (clock.now_ns() // 1000) << VERSION_PEER_BITS | (peer_id & ((1 << VERSION_PEER_BITS) - 1))
UpdateHook = Callable[[int, Operation], None]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while 100k small objects (point slices, dict entries) are made:
    none of them can form a cycle, and a full collection over a big heap would otherwise run several times
    in the middle (it doubled the time of a restore). Collection resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class CorruptPoint(ServiceError):
    pass


def record_decode(point_id: PointId, data: Content, version: int) -> PointRecord:
    """A point's record from its canonical bytes; refuses bytes that are not this point's."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise CorruptPoint(f"stored point {point_id} is corrupt ({error})") from error
    if type(value) is not list or len(value) != 3 or value[0] != point_id \
            or type(value[1]) not in (bytes, dict) or type(value[2]) is not dict:
        raise CorruptPoint(f"stored point {point_id} is corrupt (its bytes hold another point or no point)")
    return value[1], value[2], version


class Records(Mapping[PointId, PointRecord]):
    """The shard's points as records `(vector, payload, version)`, each decoded once, on first use."""

    def __init__(self, packed: dict[PointId, Content], versions: dict[PointId, int]) -> None:
        self._packed = packed
        self._versions = versions
        self._decoded: dict[PointId, PointRecord] = {}

    def __getitem__(self, point_id: PointId) -> PointRecord:
        record = self._decoded.get(point_id)
        if record is None:
            record = record_decode(point_id, self._packed[point_id], self._versions[point_id])
            self._decoded[point_id] = record
        return record

    def get(self, point_id: PointId, default: Any = None) -> Any:
        record = self._decoded.get(point_id)
        if record is not None:
            return record
        return self[point_id] if point_id in self._packed else default

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._packed

    def __len__(self) -> int:
        return len(self._packed)

    def __iter__(self) -> Iterator[PointId]:
        return iter(self._packed)

    def items(self) -> Iterator[tuple[PointId, PointRecord]]:  # type: ignore[override]
        """Every point with its record; ids taken up front, so writes meanwhile do not break the iteration
        (a point deleted meanwhile is skipped)."""
        for point_id in list(self._packed):
            record = self.get(point_id)
            if record is not None:
                yield point_id, record

    def _set(self, point_id: PointId, record: PointRecord) -> None:
        self._decoded[point_id] = record

    def _drop(self, point_id: PointId) -> None:
        self._decoded.pop(point_id, None)


@dataclass
class PointSet:
    """Points in canonical id order: ids, canonical bytes and versions, aligned."""
    ids: list[PointId] = field(default_factory=list)
    contents: list[Content] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    # the same contents already joined in blocks (a snapshot's points members), and the SHA-256 of all of
    # them in order (the content digest): a base file is then written from them as they are
    blocks: list[Content] | None = None
    blocks_sha256: str | None = None

    @classmethod
    def from_records(cls, records: Iterable[tuple[PointId, PointRecord]]) -> PointSet:
        by_id = {point_id: (point_content(point_id, vector, payload), version)
                 for point_id, (vector, payload, version) in records}
        ids = ids_sorted(by_id)
        return cls(ids, [by_id[i][0] for i in ids], [by_id[i][1] for i in ids])


def contents_slice(blob: memoryview, lengths: list[int]) -> list[Content]:
    """Cut a concatenation of point bytes at the given lengths (they must cover it exactly)."""
    offsets = list(itertools.accumulate(lengths, initial=0))
    if offsets[-1] != len(blob) or (lengths and min(lengths) <= 0):
        raise ValueError(f"point lengths cover {offsets[-1]} bytes of {len(blob)}")
    return [blob[start:end] for start, end in zip(offsets, offsets[1:], strict=False)]


def base_write(path: Path, header: dict[str, Any], points: PointSet) -> None:
    """Write a base file under a temporary name, fsync it, and rename it into place.

    Layout: magic, 8-byte header length, msgpack header (`seq`, `tombstones`, `ids`, `lengths`, `versions`,
    `sha256` of the contents), then the points' canonical bytes back to back. Written from a snapshot, the
    contents are its points members and their SHA-256 is the digest already checked."""
    temporary = path.with_name(path.name + ".tmp")
    contents = points.contents
    blocks = points.blocks
    sha256 = points.blocks_sha256
    if blocks is None or sha256 is None:
        blocks = [b"".join(contents[start:start + 4096]) for start in range(0, len(contents), 4096)]
        hasher = hashlib.sha256()
        for block in blocks:
            hasher.update(block)
        sha256 = hasher.hexdigest()
    header = {**header, "format": BASE_FORMAT_VERSION, "ids": points.ids,
              "lengths": [len(data) for data in contents], "versions": points.versions, "sha256": sha256}
    encoded = msgpack.packb(header, use_bin_type=True)
    with temporary.open("wb") as file:
        file.write(BASE_MAGIC + len(encoded).to_bytes(8, "big"))
        file.write(encoded)
        for block in blocks:
            file.write(block)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory_fsync(path.parent)


def base_read(path: Path) -> tuple[dict[str, Any], PointSet]:
    """A base file's header and points (slices of the file's bytes), checked against its SHA-256."""
    data = memoryview(path.read_bytes())
    try:
        if bytes(data[:len(BASE_MAGIC)]) != BASE_MAGIC:
            raise ValueError(f"not a shardsim base file of format {BASE_FORMAT_VERSION}")
        start = len(BASE_MAGIC) + 8
        end = start + int.from_bytes(data[len(BASE_MAGIC):start], "big")
        header = msgpack.unpackb(data[start:end], raw=False, strict_map_key=False)
        blob = data[end:]
        if hashlib.sha256(blob).hexdigest() != header.pop("sha256"):
            raise ValueError("contents do not match their SHA-256")
        with gc_paused():
            points = PointSet(list(header.pop("ids")), contents_slice(blob, header.pop("lengths")),
                              list(header.pop("versions")))
        if not len(points.ids) == len(points.contents) == len(points.versions):
            raise ValueError("ids, lengths and versions differ in count")
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as error:
        raise ServiceError(f"Shard base file {path} is corrupt: {error}") from error
    return header, points


def directory_fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ShardView:
    """A point-in-time copy of a shard for snapshots: its info and its points in canonical id order."""
    info: dict[str, Any]
    points: PointSet
    tombstones: dict[PointId, int]


class Shard:
    """The local data of one shard. Create with `Shard.open(directory, ...)`."""

    def __init__(self, directory: Path, collection: str, shard_id: int,
                 schema: OperationSchema | None = None) -> None:
        self.directory = directory
        self.collection = collection
        self.shard_id = shard_id
        self.schema = schema or OperationSchema()
        self.log_damage: LogDamage | None = None  # records lost to a damaged log: this replica needs recovery
        self.packed: dict[PointId, Content] = {}  # each point's canonical bytes
        self.versions: dict[PointId, int] = {}
        self.points = Records(self.packed, self.versions)
        self.tombstones: dict[PointId, int] = {}
        self.version_last = 0
        self.seq = 0
        self._digest: str | None = EMPTY_DIGEST  # None: changed since last computed
        self._ordered: PointSet | None = PointSet()  # the points in canonical order, until the next write
        self.update_hooks: list[UpdateHook] = []
        self.wal: Wal | None = None
        self.compacting = False

    def _points_set(self, points: PointSet) -> None:
        with gc_paused():
            self.packed.update(zip(points.ids, points.contents, strict=True))
            self.versions.update(zip(points.ids, points.versions, strict=True))
        self.version_last = max(self.version_last, max(points.versions, default=0))

    @classmethod
    def open(cls, directory: Path, collection: str, shard_id: int, schema: OperationSchema | None = None
             ) -> Shard:
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):  # a base file or damage mark cut short by a crash
            leftover.unlink()
        shard = cls(directory, collection, shard_id, schema)
        if (directory / BASE_FILE).exists():
            header, points = base_read(directory / BASE_FILE)
            shard._points_set(points)
            shard._digest = shard._ordered = None
            shard.tombstones = dict(header.get("tombstones") or {})
            shard.seq = int(header["seq"])
        shard.wal = Wal(directory)
        shard._replay()
        return shard

    def _replay(self) -> None:
        """Apply the log's records past the base file. A record that cannot be read or applied (a damaged
        disk: nothing invalid is ever appended) ends the replay: the shard keeps what it had up to it, and
        `_log_damage_settle` makes that state durable and marks the shard as needing recovery."""
        assert self.wal is not None
        self.log_damage = damage_marker_read(self.directory)
        try:
            for path, offset, record in self.wal.records():
                if type(record) is list and record and type(record[0]) is int and 0 < record[0] <= self.seq:
                    continue  # covered by the base file
                try:
                    log_record_check(record, self.schema)
                    self._apply_memory(record[1:])
                except (MalformedOperation, ValueError, TypeError, KeyError) as error:
                    raise LogDamaged(LogDamage(path, offset, f"a record that cannot be applied ({error})")) from error
                self.seq = record[0]
                self.version_last = max(self.version_last, record[2])
        except LogDamaged as error:
            self._log_damage_settle(error.damage)

    def _log_damage_settle(self, damage: LogDamage) -> None:
        """Keep the shard as replayed up to the damaged record: mark it, write it whole as the base file, and
        set the damaged segment and later ones aside, so that new writes survive the next start."""
        assert self.wal is not None
        damage_marker_write(self.directory, damage)
        header = {"collection": self.collection, "shard_id": self.shard_id, "seq": self.seq,
                  "tombstones": self.tombstones}
        ids = list(self.packed)
        base_write(self.directory / BASE_FILE, header,
                   PointSet(ids, [self.packed[i] for i in ids], [self.versions[i] for i in ids]))
        self.wal.segments_set_aside(damage.path)
        directory_fsync(self.directory)
        self.log_damage = damage

    @classmethod
    def adopt(cls, directory: Path, collection: str, shard_id: int, seq: int, points: PointSet,
              tombstones: dict[PointId, int], digest: str, schema: OperationSchema | None = None) -> Shard:
        """Open a shard just built aside from verified content (`shard_build_aside`, renamed into place),
        taking the points' bytes from memory and the digest from the verified manifest: nothing decoded."""
        shard = cls(directory, collection, shard_id, schema)
        shard._points_set(points)
        shard.tombstones = dict(tombstones)
        shard._digest = digest
        shard._ordered = points
        shard.seq = seq
        shard.wal = Wal(directory)
        return shard

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = contents_digest(self.packed[point_id] for point_id in ids_sorted(self.packed))
        return self._digest

    def info(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "points_count": len(self.packed), "seq": self.seq,
                "digest": self.digest}

    def view(self) -> ShardView:
        """A point-in-time copy (info, points in canonical order, tombstones) that later writes do not
        change: lists of references to the points' bytes, no per-point objects. Kept until the next write,
        so a second snapshot or a transfer right after a snapshot does not sort again."""
        if self._ordered is None:
            packed, versions = self.packed, self.versions
            ids = ids_sorted(packed)
            contents = [packed[point_id] for point_id in ids]
            self._ordered = PointSet(ids, contents, [versions[point_id] for point_id in ids])
        if self._digest is None:
            self._digest = contents_digest(self._ordered.contents)
        return ShardView(self.info(), self._ordered, self.tombstones_recent())

    # -- writing ------------------------------------------------------------------------------------------
    def _put(self, point_id: PointId, record: PointRecord) -> None:
        vector, payload, version = record
        self.packed[point_id] = point_content(point_id, vector, payload_sorted(payload), payload_is_sorted=True)
        self.versions[point_id] = version
        self.points._set(point_id, record)  # the payload's keys as the client gave them
        self._digest = self._ordered = None

    def _remove(self, point_id: PointId) -> None:
        if self.packed.pop(point_id, None) is not None:
            self._digest = self._ordered = None
        self.versions.pop(point_id, None)
        self.points._drop(point_id)

    def _newer(self, point_id: PointId, version: int) -> bool:
        """Last writer wins: an update applies only if its version beats what the shard has seen."""
        current = self.versions.get(point_id)
        if current is not None and current >= version:
            return False
        return self.tombstones.get(point_id, -1) < version

    def _apply_memory(self, operation: Operation) -> None:
        kind, version, data = operation
        if kind == "upsert":
            for point_id, vectors, payload in data:
                if self._newer(point_id, version):
                    self._put(point_id, (vectors, payload or {}, version))
        elif kind == "delete":
            for point_id in data:
                if self._newer(point_id, version):
                    self._remove(point_id)
                    self.tombstones[point_id] = version
        else:  # a partial update: only of points that exist
            for point_id, change in point_changes(kind, data):
                old = self.points.get(point_id)
                if old is not None and self._newer(point_id, version):
                    vectors, payload = change(old[0], old[1])
                    self._put(point_id, (vectors, payload, version))

    async def apply(self, operation: Operation, durable: bool) -> int:
        """Apply one update `[kind, version, data]`: check, WAL append, memory, hooks; fsync when `durable`.
        A malformed operation raises MalformedOperation (400) before anything is written."""
        assert self.wal is not None, "shard is closed"
        operation_check(operation, self.schema)
        seq = self.seq + 1
        self.wal.append([seq, *operation])
        self._apply_memory(operation)
        self.seq = seq
        self.version_last = max(self.version_last, operation[1])
        for hook in list(self.update_hooks):
            hook(seq, operation)
        if durable:
            await self.wal.sync()
        return seq

    async def compact(self) -> None:
        """Write the whole shard as the base file and drop the WAL segments it covers."""
        assert self.wal is not None
        if self.compacting:
            return
        self.compacting = True
        try:
            keep_from = await self.wal.rotate()
            header = {"collection": self.collection, "shard_id": self.shard_id, "seq": self.seq,
                      "tombstones": self.tombstones_recent()}
            ids = list(self.packed)
            points = PointSet(ids, [self.packed[i] for i in ids], [self.versions[i] for i in ids])
            await asyncio.to_thread(base_write, self.directory / BASE_FILE, header, points)
            self.wal.segments_drop_before(keep_from)
        finally:
            self.compacting = False

    def tombstones_recent(self) -> dict[PointId, int]:
        """Tombstones younger than the retention; older ones can no longer meet a delayed update."""
        horizon = version_clock() - (TOMBSTONE_RETENTION_S * 1_000_000 << VERSION_PEER_BITS)
        self.tombstones = {pid: version for pid, version in self.tombstones.items() if version > horizon}
        return dict(self.tombstones)

    def close(self) -> None:
        if self.wal is not None:
            self.wal.close()
            self.wal = None


def shard_build_aside(directory: Path, collection: str, shard_id: int, seq: int,
                      points: PointSet | Iterable[tuple[PointId, PointRecord]],
                      tombstones: dict[PointId, int] | None = None) -> None:
    """Write a complete shard directory (base file only) at `directory`, for an atomic swap later."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    header = {"collection": collection, "shard_id": shard_id, "seq": seq, "tombstones": tombstones or {}}
    base_write(directory / BASE_FILE, header, points if isinstance(points, PointSet) else
               PointSet.from_records(points))



def shard_directory_repair(live: Path) -> None:
    """At start-up: put back a shard whose swap (node/storage/swaps.py) was cut before it committed, and remove
    half-built ones."""
    old = live.with_name(live.name + ".old")
    if not live.exists() and old.exists():
        os.replace(old, live)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)
    for leftover in live.parent.glob(live.name + ".new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
