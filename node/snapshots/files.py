"""Snapshot files on disk: Qdrant's names and folders, the `.checksum` sidecar, atomic writes, listing.

Folders (docs/qdrant-semantics.md section 2): collection snapshots in `{snapshots}/{collection}/`, shard snapshots in
`{snapshots}/{collection}/shards/{shard_id}/`, full snapshots in `{snapshots}/`. A snapshot is written
under a temporary name of its own (`.{name}.{random}.partial`), fsynced, its sidecar written, then renamed
into place, so a node killed mid-snapshot never lists a partial one. Only `*.snapshot` files are listed.

Names have Qdrant's one-second resolution. Qdrant gives snapshots made in the same second the same name
(the later replaces the earlier); shardsim keeps each: a creation reserves its name until its file is in
place, and the next one in that second takes the next free second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from node import clock
from node.errors import snapshot_not_found
from node.storage.shard import directory_fsync

SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"


def timestamp_now() -> dt.datetime:
    return clock.utcnow().replace(microsecond=0, tzinfo=None)


def timestamp_text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d-%H-%M-%S")


class NameReservations:
    """Snapshot paths being written, so two creations never pick the same name (the file itself only
    appears when the snapshot is complete). One per process: a node owns its snapshots directory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    @contextlib.contextmanager
    def reserved(self, directory: Path, make_name: Callable[[str], str]) -> Iterator[str]:
        """A free name from `make_name(timestamp)`, held until the block ends."""
        with self._lock:
            path = directory / self._name_free(directory, make_name)
            self._paths.add(path)
        try:
            yield path.name
        finally:
            with self._lock:
                self._paths.discard(path)

    def _name_free(self, directory: Path, make_name: Callable[[str], str]) -> str:
        moment = timestamp_now()
        for _ in range(3600):
            name = make_name(timestamp_text(moment))
            if directory / name not in self._paths and not (directory / name).exists():
                return name
            moment += dt.timedelta(seconds=1)
        raise RuntimeError("no free snapshot name")


NAMES = NameReservations()


def partial_name(name: str) -> str:
    """A temporary name for one writer of `name`: concurrent writers never share a file."""
    return f"{PARTIAL_PREFIX}{name}.{clock.token_hex(4)}{PARTIAL_SUFFIX}"


def name_safe(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and ".." not in name and name not in (".",) \
        and not name.startswith(PARTIAL_PREFIX) and "\0" not in name


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(chunk_bytes):
            hasher.update(chunk)
    return hasher.hexdigest()


def snapshot_write(directory: Path, name: str, chunks: Iterable[bytes | memoryview]) -> dict[str, Any]:
    """Write chunks to `directory/name` atomically with its sidecar; returns the description.

    Blocking: call it in a thread.
    """
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / partial_name(name)
    hasher = hashlib.sha256()
    try:
        with temporary.open("wb") as file:
            for chunk in chunks:
                hasher.update(chunk)
                file.write(chunk)
            file.flush()
            created_s = clock.now()  # the creation time is the clock's, kept as the file's mtime (`description`)
            os.utime(temporary, (created_s, created_s))
            os.fsync(file.fileno())
        checksum = hasher.hexdigest()
        sidecar = directory / (name + CHECKSUM_SUFFIX)
        sidecar.write_text(checksum)
        os.replace(temporary, directory / name)
        directory_fsync(directory)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return description(directory / name)


def description(path: Path) -> dict[str, Any]:
    """Qdrant's SnapshotDescription: name, creation_time, size, checksum (when a sidecar exists)."""
    stat = path.stat()
    created = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(microsecond=0, tzinfo=None)
    result: dict[str, Any] = {"name": path.name, "creation_time": created.isoformat(), "size": stat.st_size}
    sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
    if sidecar.exists():
        result["checksum"] = sidecar.read_text().strip()
    return result


def snapshots_list(directory: Path) -> list[dict[str, Any]]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name.endswith(SUFFIX) and not path.name.startswith(PARTIAL_PREFIX):
            try:
                found.append(description(path))
            except FileNotFoundError:
                continue  # deleted while listing
    return found


def snapshot_path(directory: Path, name: str) -> Path:
    """The path of an existing snapshot; a bad or traversing name is simply not found (404)."""
    if not name_safe(name) or not name.endswith(SUFFIX):
        raise snapshot_not_found(name)
    path = directory / name
    if not path.is_file():
        raise snapshot_not_found(name)
    return path


def snapshot_delete(directory: Path, name: str) -> None:
    path = snapshot_path(directory, name)
    path.unlink()
    path.with_name(name + CHECKSUM_SUFFIX).unlink(missing_ok=True)


def partials_clean(root: Path) -> None:
    """At start-up: remove what a crash left half-written (files and staging folders), and the sidecars
    of snapshots that were never renamed into place."""
    if not root.is_dir():
        return
    for path in list(root.rglob(f"{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}")):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for sidecar in list(root.rglob(f"*{SUFFIX}{CHECKSUM_SUFFIX}")):
        if not sidecar.with_name(sidecar.name[:-len(CHECKSUM_SUFFIX)]).exists():
            sidecar.unlink(missing_ok=True)
