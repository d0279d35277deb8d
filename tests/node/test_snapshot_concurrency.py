"""Concurrent snapshot creation: parallel requests each get their own snapshot.

Ten `POST`s for the same shard, collection or full-storage snapshot, sent at once to a real node process,
all answer 200 with ten distinct names; every one is listed, downloads to the bytes its checksum describes,
and no temporary file is left behind. (Qdrant names snapshots to the second and lets a later one of the same
second replace the earlier; shardsim keeps every one, stepping the time in the name forward.)
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

PARALLEL = 10
TIMESTAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}"
KINDS = {
    "shard": ("/collections/docs/shards/0/snapshots", ("docs", "shards", "0"),
              rf"^docs-shard-0-{TIMESTAMP}\.snapshot$"),
    "collection": ("/collections/docs/snapshots", ("docs",), rf"^docs-1-{TIMESTAMP}\.snapshot$"),
    "full": ("/snapshots", (), rf"^full-snapshot-{TIMESTAMP}\.snapshot$"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_parallel_creations_each_get_a_snapshot(client: NodeClient, node: NodeProcess, kind: str) -> None:
    path, folder, pattern = KINDS[kind]
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(3000)))
    replies = await asyncio.gather(*(client.call("POST", path) for _ in range(PARALLEL)))
    assert [status for status, _ in replies] == [200] * PARALLEL, replies
    created = [reply["result"] for _, reply in replies]
    names = {description["name"] for description in created}
    assert len(names) == PARALLEL and all(re.match(pattern, name) for name in names), names

    listed = {description["name"]: description for description in await client.ok("GET", path)}
    assert set(listed) == names
    for description in created:
        assert listed[description["name"]]["checksum"] == description["checksum"]
        status, data, _ = await client.download(f"{path}/{description['name']}")
        assert status == 200 and hashlib.sha256(data).hexdigest() == description["checksum"]

    directory = node.data_dir.joinpath("snapshots", *folder)
    assert temporary_files(directory) == []


def temporary_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith("."))
