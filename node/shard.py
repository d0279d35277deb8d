"""One shard's store: points in memory, a write-ahead log and a base file on disk, and a running digest.

A point record is `(vector: float32 bytes, payload: dict, version: int)` keyed by its canonical id. Every
update carries a version (a hybrid clock, see `version_clock`) and gets the shard's next local sequence
number (`seq`); it is appended to the WAL, applied in memory (last writer wins per point, deletes leave
tombstones) and, for durable writes, fsynced before the caller is answered. The content digest (node/protocol.py) is kept up to date
incrementally, so reading it costs nothing. Hooks let a transfer queue every update applied while it runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from node.protocol import DIGEST_MODULUS, PointId, digest_hex, point_hash
from node.wal import Wal

BASE_FILE = "points.msgpack"
BASE_FORMAT_VERSION = 1

PointRecord = tuple[bytes, dict[str, Any], int]
Operation = list[Any]  # [kind, version, data]: ["upsert", v, [[id, vector_bytes, payload], ...]],
#                        ["delete", v, [ids]], ["set_payload", v, [[id, payload], ...]]
TOMBSTONE_RETENTION_S = 600
VERSION_PEER_BITS = 12


def version_clock(peer_id: int = 0) -> int:
    """A hybrid-clock version: microseconds since the epoch, with the writer's peer id in the low bits.

    Versions order writes across nodes (last writer wins), so replicas converge whatever the order in
    which forwarded updates, queued transfer updates and snapshots reach them.
    """
    return (time.time_ns() // 1000) << VERSION_PEER_BITS | (peer_id & ((1 << VERSION_PEER_BITS) - 1))
UpdateHook = Callable[[int, Operation], None]


def base_write(path: Path, header: dict[str, Any], points: Iterable[tuple[PointId, PointRecord]]) -> None:
    """Write a base file under a temporary name, fsync it, and rename it into place."""
    temporary = path.with_name(path.name + ".tmp")
    packer = msgpack.Packer(use_bin_type=True)
    with temporary.open("wb") as file:
        file.write(packer.pack(header))
        batch: list[bytes] = []
        for point_id, (vector, payload, version) in points:
            batch.append(packer.pack([point_id, vector, payload, version]))
            if len(batch) >= 4096:
                file.write(b"".join(batch))
                batch.clear()
        file.write(b"".join(batch))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory_fsync(path.parent)


def base_read(path: Path) -> tuple[dict[str, Any], Iterator[list[Any]]]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)
    file = path.open("rb")
    unpacker.feed(file.read(1 << 20))
    header = next(unpacker)

    def rest() -> Iterator[list[Any]]:
        with file:
            yield from unpacker
            while chunk := file.read(1 << 20):
                unpacker.feed(chunk)
                yield from unpacker
    return header, rest()


def directory_fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ShardView:
    info: dict[str, Any]
    points: dict[PointId, PointRecord]
    tombstones: dict[PointId, int]
    packed: dict[PointId, bytes] | None = None  # each point already msgpack-packed, in `points`' order


class Shard:
    """The local data of one shard. Create with `Shard.open(directory, ...)`."""

    def __init__(self, directory: Path, collection: str, shard_id: int) -> None:
        self.directory = directory
        self.collection = collection
        self.shard_id = shard_id
        self.points: dict[PointId, PointRecord] = {}
        # every point also kept packed as `[id, [vector, payload, version]]` (snapshots join these bytes
        # instead of packing 100k records at stream time); same keys, same order as `points`
        self.packed: dict[PointId, bytes] = {}
        self._packer = msgpack.Packer(use_bin_type=True)
        self.tombstones: dict[PointId, int] = {}
        self.version_last = 0
        self.seq = 0
        self.digest_sum = 0
        self.update_hooks: list[UpdateHook] = []
        self.wal: Wal | None = None
        self.compacting = False

    @classmethod
    def open(cls, directory: Path, collection: str, shard_id: int) -> Shard:
        directory.mkdir(parents=True, exist_ok=True)
        shard = cls(directory, collection, shard_id)
        base_seq = 0
        if (directory / BASE_FILE).exists():
            header, records = base_read(directory / BASE_FILE)
            base_seq = int(header["seq"])
            for point_id, vector, payload, version in records:
                shard._put(point_id, (vector, payload, version))
                shard.version_last = max(shard.version_last, version)
            shard.tombstones = dict(header.get("tombstones") or {})
            shard.seq = base_seq
        shard.wal = Wal(directory)
        for record in shard.wal.records():
            seq, operation = record[0], record[1:]
            if seq > shard.seq:
                shard._apply_memory(operation)
                shard.seq = seq
                shard.version_last = max(shard.version_last, operation[1])
        return shard

    @classmethod
    def adopt(cls, directory: Path, collection: str, shard_id: int, seq: int,
              points: list[tuple[PointId, PointRecord]], tombstones: dict[PointId, int], digest: str,
              packed: list[bytes] | None = None) -> Shard:
        """Open a shard just built aside from verified content (`shard_build_aside`, renamed into place),
        taking the points from memory and the digest from the verified manifest: no re-read, no re-hash."""
        shard = cls(directory, collection, shard_id)
        shard.points = dict(points)
        if packed is not None and len(packed) == len(points) and len(shard.points) == len(points):
            shard.packed = {point_id: data for (point_id, _record), data in zip(points, packed, strict=True)}
        else:
            pack = shard._packer.pack
            shard.packed = {point_id: pack([point_id, record]) for point_id, record in shard.points.items()}
        shard.tombstones = dict(tombstones)
        shard.digest_sum = int(digest, 16)
        shard.version_last = max((record[2] for record in shard.points.values()), default=0)
        shard.seq = seq
        shard.wal = Wal(directory)
        return shard

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def digest(self) -> str:
        return digest_hex(self.digest_sum)

    def info(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "points_count": len(self.points), "seq": self.seq,
                "digest": self.digest}

    def view(self) -> ShardView:
        """A point-in-time copy (info, points, tombstones) that later writes do not change.

        A dict copy, not a list of items: it allocates no per-point objects, so it takes milliseconds in
        the event loop even for a big shard (a list of 100k fresh tuples also set off a full GC pass).
        """
        return ShardView(self.info(), self.points.copy(), self.tombstones_recent(), self.packed.copy())

    # -- writing ------------------------------------------------------------------------------------------
    def _put(self, point_id: PointId, record: PointRecord) -> None:
        old = self.points.get(point_id)
        if old is not None:
            self.digest_sum -= point_hash(point_id, old[0], old[1])
        self.points[point_id] = record
        self.packed[point_id] = self._packer.pack([point_id, record])
        self.digest_sum = (self.digest_sum + point_hash(point_id, record[0], record[1])) % DIGEST_MODULUS

    def _remove(self, point_id: PointId) -> None:
        old = self.points.pop(point_id, None)
        self.packed.pop(point_id, None)
        if old is not None:
            self.digest_sum = (self.digest_sum - point_hash(point_id, old[0], old[1])) % DIGEST_MODULUS

    def _newer(self, point_id: PointId, version: int) -> bool:
        """Last writer wins: an update applies only if its version beats what the shard has seen."""
        current = self.points.get(point_id)
        if current is not None and current[2] >= version:
            return False
        return self.tombstones.get(point_id, -1) < version

    def _apply_memory(self, operation: Operation) -> None:
        kind, version, data = operation
        if kind == "upsert":
            for point_id, vector, payload in data:
                if self._newer(point_id, version):
                    self._put(point_id, (vector, payload or {}, version))
        elif kind == "delete":
            for point_id in data:
                if self._newer(point_id, version):
                    self._remove(point_id)
                    self.tombstones[point_id] = version
        elif kind == "set_payload":
            for point_id, payload in data:
                old = self.points.get(point_id)
                if old is not None and self._newer(point_id, version):
                    self._put(point_id, (old[0], {**old[1], **payload}, version))
        else:
            raise ValueError(f"unknown shard operation {kind!r}")

    def version_next(self) -> int:
        """A version for a local write on a standalone node (above anything the shard has seen)."""
        self.version_last = max(self.version_last + 1, version_clock())
        return self.version_last

    async def apply(self, operation: Operation, durable: bool) -> int:
        """Apply one update `[kind, version, data]`: WAL append, memory, hooks; fsync when `durable`."""
        assert self.wal is not None, "shard is closed"
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
            header = {"format": BASE_FORMAT_VERSION, "collection": self.collection,
                      "shard_id": self.shard_id, "seq": self.seq, "tombstones": self.tombstones_recent()}
            points = list(self.points.items())
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
                      points: Iterable[tuple[PointId, PointRecord]],
                      tombstones: dict[PointId, int] | None = None) -> None:
    """Write a complete shard directory (base file only) at `directory`, for an atomic swap later."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    header = {"format": BASE_FORMAT_VERSION, "collection": collection, "shard_id": shard_id, "seq": seq,
              "tombstones": tombstones or {}}
    base_write(directory / BASE_FILE, header, points)


def shard_directory_swap(live: Path, prepared: Path) -> None:
    """Replace `live` by `prepared` with renames; `shard_directory_repair` finishes a swap cut by a crash."""
    old = live.with_name(live.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if live.exists():
        os.replace(live, old)
    os.replace(prepared, live)
    directory_fsync(live.parent)
    shutil.rmtree(old, ignore_errors=True)


def shard_directory_repair(live: Path) -> None:
    """At start-up: put back a shard whose swap was interrupted, and remove half-built ones."""
    old = live.with_name(live.name + ".old")
    if not live.exists() and old.exists():
        os.replace(old, live)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)
    for leftover in live.parent.glob(live.name + ".new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
