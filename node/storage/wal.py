"""Write-ahead log of one shard: msgpack records in numbered segment files.

Durability model: a record is on disk once `sync()` returned (fsync, group-committed: concurrent writers
share one fsync). Nothing written without a sync is promised to survive `kill -9`. Replay stops at the first
incomplete record, so a torn tail left by a crash is ignored. Compaction rotates to a new segment, writes
the shard's base file, then deletes the old segments (`segments_drop_before`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

SEGMENT_PREFIX = "wal-"
SEGMENT_SUFFIX = ".log"


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
        number = path.name[len(SEGMENT_PREFIX):-len(SEGMENT_SUFFIX)]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def records_read(path: Path) -> Iterator[list[Any]]:
    """Every complete record of one segment file; a torn tail is skipped."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            unpacker.feed(chunk)
            try:
                yield from unpacker
            except (msgpack.ExtraData, ValueError, msgpack.UnpackException):
                return


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

    def records(self) -> Iterator[list[Any]]:
        for _, path in segment_paths(self.directory):
            yield from records_read(path)

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

    def close(self) -> None:
        self._file.close()
