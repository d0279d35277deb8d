"""Write-ahead log of one shard: msgpack records in numbered segment files.

Durability model: a record is on disk once `sync()` returned (fsync, group-committed: concurrent writers
share one fsync). Nothing written without a sync is promised to survive `kill -9`. Replay stops at the first
incomplete record of a segment, so a torn tail left by a crash is ignored. Bytes that are no msgpack at all
raise `LogDamaged` with the file and the offset of the record (the shard decides what to do, see
node/storage/shard.py). Compaction rotates to a new segment, writes the shard's base file, then deletes the
old segments (`segments_drop_before`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

SEGMENT_PREFIX = "wal-"
SEGMENT_SUFFIX = ".log"
DAMAGED_SUFFIX = ".damaged"  # a segment set aside after a damaged record: kept to look at, never replayed
DAMAGE_MARKER = "log-damage.json"  # the shard lost records to a damaged log and needs recovery


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
        number = path.name[len(SEGMENT_PREFIX):-len(SEGMENT_SUFFIX)]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


@dataclass(frozen=True)
class LogDamage:
    """Where a log holds a record that cannot be read or applied, and why."""
    path: Path
    offset: int
    reason: str

    def text(self) -> str:
        return f"{self.path} at offset {self.offset}: {self.reason}"


class LogDamaged(Exception):
    def __init__(self, damage: LogDamage) -> None:
        super().__init__(damage.text())
        self.damage = damage


def records_read(path: Path) -> Iterator[tuple[int, Any]]:
    """Every complete record of one segment file with its offset; a torn tail (an incomplete last record)
    is skipped; bytes that are not msgpack raise LogDamaged."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)
    offset = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            try:
                unpacker.feed(chunk)
                for record in unpacker:
                    yield offset, record
                    offset = unpacker.tell()
            except (ValueError, msgpack.UnpackException) as error:
                reason = f"not a msgpack record ({type(error).__name__}: {error})".replace(" ()", "")
                raise LogDamaged(LogDamage(path, offset, reason)) from error


def damage_marker_write(directory: Path, damage: LogDamage) -> None:
    """Record (fsynced) that this shard's log was damaged: the mark stays until the shard's directory is
    replaced by a recovery or a transfer, so it is reported at every start until then."""
    temporary = directory / (DAMAGE_MARKER + ".tmp")
    with temporary.open("w") as file:
        json.dump({"file": str(damage.path), "offset": damage.offset, "reason": damage.reason}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, directory / DAMAGE_MARKER)


def damage_marker_read(directory: Path) -> LogDamage | None:
    path = directory / DAMAGE_MARKER
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
        return LogDamage(Path(value["file"]), int(value["offset"]), str(value["reason"]))
    except (ValueError, KeyError, TypeError) as error:
        return LogDamage(path, 0, f"the damage mark itself is unreadable ({error})")


class Wal:
    """The append side of a shard's log. Not thread-safe; used from the event loop only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        segments = segment_paths(directory)
        # Never append behind an old segment's tail: a crash may have torn it, and a record written after
        # torn bytes would be misread on the next replay. Start a new segment unless the last one is empty.
        self.segment_number = 1
        if segments:
            last_number, last_path = segments[-1]
            self.segment_number = last_number if last_path.stat().st_size == 0 else last_number + 1
        self._file = self._segment_open(self.segment_number)
        self._written_bytes = 0
        self._synced_bytes = 0
        self._sync_lock = asyncio.Lock()
        # every segment not yet covered by the base file counts towards the next compaction
        self.size_bytes = sum(path.stat().st_size for _, path in segment_paths(directory))

    def _segment_open(self, number: int) -> Any:
        path = self.directory / f"{SEGMENT_PREFIX}{number:08d}{SEGMENT_SUFFIX}"
        return path.open("ab", buffering=0)

    def records(self) -> Iterator[tuple[Path, int, Any]]:
        """Every record of every segment in order, with its file and offset (see `records_read`)."""
        for _, path in segment_paths(self.directory):
            for offset, record in records_read(path):
                yield path, offset, record

    def append(self, record: list[Any]) -> None:
        data = msgpack.packb(record, use_bin_type=True)
        self._file.write(data)
        self._written_bytes += len(data)
        self.size_bytes += len(data)

    async def sync(self) -> None:
        """fsync everything appended so far; concurrent callers share one fsync."""
        target = self._written_bytes
        async with self._sync_lock:
            if self._synced_bytes >= target:
                return
            upto = self._written_bytes
            fd = self._file.fileno()
            await asyncio.to_thread(os.fsync, fd)
            self._synced_bytes = max(self._synced_bytes, upto)

    async def rotate(self) -> int:
        """Start a new segment, then fsync and close the old one; returns the new segment's number.

        The switch happens before the fsync, so records appended while it runs go to the new segment and
        are not counted as synced.
        """
        async with self._sync_lock:
            old, upto = self._file, self._written_bytes
            self.segment_number += 1
            self._file = self._segment_open(self.segment_number)
            self.size_bytes = 0
            try:
                await asyncio.to_thread(os.fsync, old.fileno())
            finally:
                old.close()
            self._synced_bytes = max(self._synced_bytes, upto)
            return self.segment_number

    def segments_drop_before(self, number: int) -> None:
        for segment, path in segment_paths(self.directory):
            if segment < number:
                path.unlink(missing_ok=True)

    def segments_set_aside(self, first: Path) -> list[Path]:
        """After a damaged record in segment `first` (whose content the base file now covers up to it): set
        it and every later segment but the open one aside (`.damaged`), and drop the earlier ones."""
        first_number = next(number for number, path in segment_paths(self.directory) if path == first)
        moved = []
        for number, path in segment_paths(self.directory):
            if first_number <= number < self.segment_number:
                target = path.with_name(path.name + DAMAGED_SUFFIX)
                os.replace(path, target)
                moved.append(target)
        self.segments_drop_before(first_number)
        self.size_bytes = sum(path.stat().st_size for _, path in segment_paths(self.directory))
        return moved

    def close(self) -> None:
        self._file.close()
