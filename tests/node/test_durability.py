"""Durability with real crashes: SIGKILL a node process during snapshot creation, during recovery, and
after acknowledged writes; restart it on the same data directory and port and check what survived.

The model (docs/node.md, "Durability model"): an update acknowledged with `wait=true` is fsynced and survives
`kill -9`; a snapshot is listed only once complete; a recovery is all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from node.retry import wait_until
from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

POINTS_BIG = 60_000
SIZE = 32


async def wait_path(find: Callable[[], list[Path]], what: str, timeout_s: float = 10.0) -> list[Path]:
    """Poll the file system every millisecond (a temporary file lives briefly) until `find` returns something."""
    return await wait_until(find, timeout_s, interval_s=0.001, what=what)


def temp_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(".partial") or ".new-" in path.name
            or path.name.endswith(".old") or path.name.endswith(".tmp")]


async def restart_checked(node: NodeProcess, client: NodeClient) -> None:
    node.kill()
    node.start()
    await client.reconnect()
    assert temp_files(node.data_dir) == [], "temporary files survived the restart"


async def big_collection(client: NodeClient) -> list[dict]:
    points = points_make(range(POINTS_BIG), size=SIZE)
    await client.collection_create("docs", size=SIZE)
    await client.points_upsert("docs", points, batch_size=4000)
    return points


async def test_kill_during_snapshot_creation(node: NodeProcess, client: NodeClient) -> None:
    points = await big_collection(client)
    directory = node.data_dir / "snapshots" / "docs"
    status, _ = await client.call("POST", "/collections/docs/snapshots", params={"wait": "false"})
    assert status == 202
    await wait_path(lambda: list(directory.glob(".*.partial")), "a partial collection snapshot")
    await restart_checked(node, client)
    assert await client.ok("GET", "/collections/docs/snapshots") == []
    assert [path.name for path in directory.iterdir() if path.name.endswith(".snapshot")] == []

    status, _ = await client.call("POST", "/snapshots", params={"wait": "false"})
    assert status == 202
    root = node.data_dir / "snapshots"
    await wait_path(lambda: [path for path in root.glob(".full-*/*") if path.name.endswith(".partial")],
                    "a partial file of a full snapshot")
    await restart_checked(node, client)
    assert await client.ok("GET", "/snapshots") == []
    assert await client.count("docs") == POINTS_BIG
    assert await client.points_all("docs") == points_expected(points)
    created = await client.ok("POST", "/collections/docs/snapshots")
    assert await client.ok("GET", "/collections/docs/snapshots") == [created]


async def test_kill_during_recovery_leaves_old_or_new_data(node: NodeProcess, client: NodeClient) -> None:
    snapshot_points = await big_collection(client)
    created = await client.ok("POST", "/collections/docs/snapshots")
    later = points_make(range(POINTS_BIG, POINTS_BIG + 1000), size=SIZE, tag="later")
    await client.points_upsert("docs", later)
    old_state = points_expected(snapshot_points + later)
    new_state = points_expected(snapshot_points)
    location = (node.data_dir / "snapshots" / "docs" / created["name"]).as_uri()
    shards_dir = node.data_dir / "collections" / "docs" / "shards"

    status, _ = await client.call("PUT", "/collections/docs/snapshots/recover", {"location": location},
                                  params={"wait": "false"})
    assert status == 202
    await wait_path(lambda: list(shards_dir.glob("0.new-*/*")), "a shard being recovered")
    await restart_checked(node, client)
    after = await client.points_all("docs")
    assert after in (old_state, new_state), f"{len(after)} points: neither the old nor the recovered data"
    assert await client.ok("GET", "/collections/docs/snapshots") == [created]


async def test_kill_after_acknowledged_writes_loses_nothing(node: NodeProcess, client: NodeClient) -> None:
    await client.collection_create("docs", size=8, shard_number=3)
    points = points_make(range(3000), size=8)
    expected = points_expected(points)
    for start in range(0, 3000, 300):
        await client.points_upsert("docs", points[start:start + 300])
    deleted = list(range(0, 3000, 7))
    await client.ok("POST", "/collections/docs/points/delete", {"points": deleted}, params={"wait": "true"})
    await client.ok("POST", "/collections/docs/points/payload", {"payload": {"flag": True}, "points": [1, 2, 3]},
                    params={"wait": "true"})
    for point_id in deleted:
        expected.pop(point_id)
    for point_id in (1, 2, 3):
        vector, payload = expected[point_id]
        expected[point_id] = (vector, {**payload, "flag": True})
    for round_number in range(2):
        await restart_checked(node, client)
        assert await client.points_all("docs") == expected, f"after kill {round_number + 1}"
        first_id = 10_000 + round_number * 10
        extra = points_make(range(first_id, first_id + 10), size=8)
        await client.points_upsert("docs", extra)
        expected.update(points_expected(extra))


async def test_a_compaction_cut_by_a_kill_leaves_no_temporary_base_file(node: NodeProcess,
                                                                        client: NodeClient) -> None:
    """What a compaction killed mid-write leaves (its half-written base file under a temporary name) is
    removed at start-up, and the shard is read from its last complete base file and log."""
    await client.collection_create("docs", size=8)
    points = points_make(range(300), size=8)
    await client.points_upsert("docs", points)
    node.kill()
    leftover = node.data_dir / "collections" / "docs" / "shards" / "0" / "points.msgpack.tmp"
    leftover.write_bytes(b"SSBASE2\n half written")
    node.start()
    await client.reconnect()
    assert not leftover.exists()
    assert await client.points_all("docs") == points_expected(points)
