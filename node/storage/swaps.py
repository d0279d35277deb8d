"""Replacing several shards of a collection in one step that a crash cannot split.

A recovery (or a transfer) first builds every new shard directory aside, complete and fsynced
(`shards/{id}.new-{token}`); nothing live has changed yet. It then commits by writing one marker,
`shards/swap-{token}.json`, that lists every prepared directory (written under a temporary name, fsynced,
renamed). Only then is each shard swapped: its live directory is renamed to `{id}.old` and the prepared
one to `{id}`; once all are in place the old directories and the marker are removed.

At start-up, `swaps_finish` makes every interrupted swap whole: a marker present means the swap was
committed, and it is rolled forward for every shard it lists (from whatever point the crash left each one
at); prepared directories that no marker lists were never committed and are removed, so the old data stays.
A collection is therefore wholly old or wholly new whenever the node was killed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from node.storage.shard import directory_fsync

MARKER_PREFIX = "swap-"
MARKER_SUFFIX = ".json"
PREPARED_INFIX = ".new-"
OLD_SUFFIX = ".old"


def prepared_path(shards_dir: Path, shard_id: int, token: str) -> Path:
    return shards_dir / f"{shard_id}{PREPARED_INFIX}{token}"


def swap_commit(shards_dir: Path, prepared: dict[int, Path]) -> Path:
    """Write the marker that commits a swap of every prepared directory (each complete and fsynced); it is
    named after their common token (`prepared_path`)."""
    directory_fsync(shards_dir)  # the prepared directories' entries are durable before the marker names them
    tokens = {path.name.split(PREPARED_INFIX, 1)[1] for path in prepared.values()}
    assert len(tokens) == 1, f"one swap prepares its directories with one token, not {tokens}"
    marker = shards_dir / f"{MARKER_PREFIX}{tokens.pop()}{MARKER_SUFFIX}"
    temporary = marker.with_name(marker.name + ".tmp")
    with temporary.open("w") as file:
        json.dump({"shards": {str(shard_id): path.name for shard_id, path in sorted(prepared.items())}}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, marker)
    directory_fsync(shards_dir)
    return marker


def shard_swap(shards_dir: Path, shard_id: int, prepared_name: str) -> None:
    """Put one prepared directory in place of the live one; idempotent, so that a swap cut anywhere by a
    crash can be run again (a prepared directory already gone means this shard was swapped)."""
    live = shards_dir / str(shard_id)
    prepared = shards_dir / prepared_name
    old = shards_dir / f"{shard_id}{OLD_SUFFIX}"
    if not prepared.exists():
        return
    if live.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(live, old)
    os.replace(prepared, live)


def marker_read(marker: Path) -> dict[int, str]:
    listed = json.loads(marker.read_text())["shards"]
    return {int(shard_id): str(name) for shard_id, name in listed.items()}


def swap_finish(shards_dir: Path, marker: Path) -> None:
    """Every shard of the swap is in place: remove the old directories, then the marker."""
    for shard_id in marker_read(marker):
        shutil.rmtree(shards_dir / f"{shard_id}{OLD_SUFFIX}", ignore_errors=True)
    marker.unlink()
    directory_fsync(shards_dir)


def swaps_finish(shards_dir: Path) -> list[int]:
    """At start-up: roll every committed swap forward, then remove what no committed swap names (prepared
    directories, uncommitted markers) and put back a live directory that a legacy single swap left as
    `.old`. Returns the shards that were rolled forward."""
    if not shards_dir.is_dir():
        return []
    rolled: list[int] = []
    for marker in sorted(shards_dir.glob(f"{MARKER_PREFIX}*{MARKER_SUFFIX}")):
        listed = marker_read(marker)
        for shard_id, name in sorted(listed.items()):
            shard_swap(shards_dir, shard_id, name)
        directory_fsync(shards_dir)
        swap_finish(shards_dir, marker)
        rolled.extend(listed)
    for path in sorted(shards_dir.iterdir()):
        if path.name.startswith(MARKER_PREFIX) and path.name.endswith(".tmp"):
            path.unlink()
        elif PREPARED_INFIX in path.name:
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.endswith(OLD_SUFFIX):
            live = path.with_name(path.name[:-len(OLD_SUFFIX)])
            if live.exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.replace(path, live)
    directory_fsync(shards_dir)
    return sorted(rolled)
