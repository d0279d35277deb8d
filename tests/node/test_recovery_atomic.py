"""A collection recovery is all-or-nothing across its shards, whenever the node is killed (issue 14, defect 2).

A collection of 2 shards is recovered from an uploaded snapshot, and the node is killed with SIGKILL at each
stage of the recovery as it appears on disk: shard 0 built aside, shard 1 built aside (the instant of the
issue, which left shard 0 new and shard 1 old), the swap committed, shard 0 or 1 swapped out, and at a few
delays after the upload. After every restart the collection is wholly the old data or wholly the
snapshot's, and no temporary file is left. Each round recovers the state the collection is not in, so that
an old and a new result can be told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

POINTS = 40_000
SIZE = 32
UPLOAD = "/collections/docs/snapshots/upload"
Finder = Callable[[Path], list[Path]]
STAGES: dict[str, Finder] = {
    "shard 0 built aside": lambda shards: list(shards.glob("0.new-*/*")),
    "shard 1 built aside": lambda shards: list(shards.glob("1.new-*")),
    "swap committed": lambda shards: list(shards.glob("swap-*.json")),
    "shard 0 swapped out": lambda shards: list(shards.glob("0.old")),
    "shard 1 swapped out": lambda shards: list(shards.glob("1.old")),
}
COMMITTED_STAGES = ("swap committed", "shard 0 swapped out", "shard 1 swapped out")
DELAYS_S = (0.0, 0.05, 0.2)
TEMPORARY_MARKS = (".partial", ".tmp", ".old", ".new-")


def temp_files(root: Path) -> list[Path]:
    """What a finished start-up must have removed: half-written files, prepared or swapped-out shards."""
    return [path for path in root.rglob("*") if any(mark in path.name for mark in TEMPORARY_MARKS)]


async def wait_stage(find: Finder, shards: Path, upload: asyncio.Task[Any], timeout_s: float = 20.0) -> bool:
    """Poll the file system (every 0.2 ms) until `find` sees something; False if the recovery ended first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if find(shards):
            return True
        if upload.done():
            return False
        await asyncio.sleep(0.0002)
    raise AssertionError("the recovery neither reached the stage nor ended")


class States:
    """The two snapshots and the data each holds; `current` is what the collection holds now."""

    def __init__(self) -> None:
        self.snapshots: dict[str, bytes] = {}
        self.data: dict[str, dict[Any, Any]] = {}
        self.current = ""

    def other(self) -> str:
        return "b" if self.current == "a" else "a"


async def two_snapshots(client: NodeClient) -> States:
    states = States()
    points = points_make(range(POINTS), size=SIZE)
    await client.collection_create("docs", size=SIZE, shard_number=2)
    await client.points_upsert("docs", points, batch_size=5000)
    for name, extra in (("a", []), ("b", points_make(range(POINTS, POINTS + 500), size=SIZE, tag="later"))):
        await client.points_upsert("docs", extra)
        points = points + extra
        created = await client.ok("POST", "/collections/docs/snapshots")
        status, states.snapshots[name], _ = await client.download(f"/collections/docs/snapshots/{created['name']}")
        assert status == 200
        states.data[name] = points_expected(points)
    states.current = "b"
    return states


async def killed_round(node: NodeProcess, client: NodeClient, states: States, stage: str | None,
                       delay_s: float) -> bool:
    """Recover the other snapshot, kill the node at `stage` (or `delay_s` after the upload was sent), restart;
    returns whether the kill came before the recovery ended. Once the swap is committed, the recovery is
    rolled forward at start-up: a kill at a stage from then on must give the new data."""
    shards = node.data_dir / "collections" / "docs" / "shards"
    target = states.other()
    upload = asyncio.ensure_future(client.upload(UPLOAD, states.snapshots[target]))
    try:
        if stage is not None:
            hit = await wait_stage(STAGES[stage], shards, upload)
        else:
            await asyncio.sleep(delay_s)
            hit = not upload.done()
        node.kill()
    finally:
        with contextlib.suppress(Exception):
            await upload
    node.start()
    await client.reconnect()
    assert temp_files(node.data_dir) == [], f"temporary files survived the restart ({stage or delay_s})"
    after = await client.points_all("docs")
    assert after in (states.data[states.current], states.data[target]), \
        f"killed at {stage or delay_s}: {len(after)} points, neither wholly old nor wholly new"
    if hit and stage in COMMITTED_STAGES:
        assert after == states.data[target], f"killed at {stage}: the committed swap was not rolled forward"
    states.current = target if after == states.data[target] else states.current
    return hit


async def test_collection_recovery_is_wholly_old_or_wholly_new_after_kill(node: NodeProcess,
                                                                          client: NodeClient) -> None:
    states = await two_snapshots(client)
    hits = []
    for stage in STAGES:
        if await killed_round(node, client, states, stage, 0.0):
            hits.append(stage)
    for delay_s in DELAYS_S:
        await killed_round(node, client, states, None, delay_s)
    assert "shard 1 built aside" in hits, f"the instant of the issue was never reached (reached: {hits})"
    status, reply = await client.upload(UPLOAD, states.snapshots[states.other()])
    assert status == 200, reply
    assert await client.points_all("docs") == states.data[states.other()]
