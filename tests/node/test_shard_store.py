"""The shard store alone (node/storage/shard.py, node/storage/wal.py) in a temporary directory: WAL replay, compaction,
torn WAL tails, and the atomic swap of a rebuilt shard. What is reopened must equal what was written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node.protocol import shard_digest, vector_pack
from node.storage.shard import (
    Shard,
    shard_build_aside,
    shard_directory_repair,
    version_clock,
)
from node.storage.wal import segment_paths

VERSION_BASE = version_clock()  # recent versions: tombstones younger than the retention are kept


def upsert(version: int, ids: range, tag: str) -> list:
    return ["upsert", version, [[point_id, vector_pack([float(point_id), 1.0]), {"tag": tag}]
                                for point_id in ids]]


def contents(shard: Shard) -> dict:
    return dict(shard.points)


async def test_wal_replay_restores_updates_deletes_and_payloads(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path / "0", "docs", 0)
    await shard.apply(upsert(VERSION_BASE + 1, range(100), "a"), durable=True)
    await shard.apply(["delete", VERSION_BASE + 2, [5, 6, 7]], durable=True)
    await shard.apply(["set_payload", VERSION_BASE + 3, [[8, {"x": 1}]]], durable=True)
    await shard.apply(["upsert", VERSION_BASE, [[9, vector_pack([0.0, 0.0]), {}]]], durable=True)  # older
    expected, digest, seq = contents(shard), shard.digest, shard.seq
    shard.close()
    reopened = Shard.open(tmp_path / "0", "docs", 0)
    assert contents(reopened) == expected and reopened.digest == digest and reopened.seq == seq == 4
    assert 5 not in reopened.points and reopened.points[8][1] == {"tag": "a", "x": 1}
    assert reopened.points[9][1] == {"tag": "a"}, "an older version must not overwrite a newer one"
    assert reopened.digest == shard_digest((pid, rec[0], rec[1]) for pid, rec in expected.items())
    reopened.close()


async def test_compaction_keeps_everything_and_drops_old_segments(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path / "0", "docs", 0)
    for batch in range(10):
        await shard.apply(upsert(VERSION_BASE + batch, range(batch * 50, batch * 50 + 80), f"b{batch}"),
                          durable=True)
    await shard.apply(["delete", VERSION_BASE + 20, list(range(0, 500, 3))], durable=True)
    segments_before = segment_paths(shard.directory)
    await shard.compact()
    assert (shard.directory / "points.msgpack").exists()
    assert all(number > segments_before[-1][0] for number, _ in segment_paths(shard.directory))
    await shard.apply(upsert(VERSION_BASE + 30, range(1000, 1010), "after"), durable=True)
    expected, digest = contents(shard), shard.digest
    shard.close()
    reopened = Shard.open(tmp_path / "0", "docs", 0)
    assert contents(reopened) == expected and reopened.digest == digest
    assert reopened.tombstones and 3 not in reopened.points
    reopened.close()


async def test_writes_during_compaction_survive(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path / "0", "docs", 0)
    await shard.apply(upsert(VERSION_BASE, range(2000), "base"), durable=True)

    async def writer() -> None:
        for step in range(50):
            await shard.apply(upsert(VERSION_BASE + 1 + step, range(3000 + step * 10, 3010 + step * 10), "w"),
                              durable=True)
            await asyncio.sleep(0)
    await asyncio.gather(shard.compact(), writer(), shard.compact())
    expected = contents(shard)
    assert len(expected) == 2500
    shard.close()
    reopened = Shard.open(tmp_path / "0", "docs", 0)
    assert contents(reopened) == expected
    reopened.close()


async def test_torn_wal_tail_is_ignored_and_later_writes_survive(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path / "0", "docs", 0)
    await shard.apply(upsert(VERSION_BASE, range(10), "a"), durable=True)
    shard.close()
    _, segment = segment_paths(tmp_path / "0")[-1]
    with segment.open("ab") as file:  # a crash in the middle of appending a record
        file.write(b"\x94\x02\xa6upsert\xcd")
    shard = Shard.open(tmp_path / "0", "docs", 0)
    assert len(shard.points) == 10
    await shard.apply(upsert(VERSION_BASE + 1, range(10, 20), "b"), durable=True)
    expected = contents(shard)
    shard.close()
    reopened = Shard.open(tmp_path / "0", "docs", 0)
    assert contents(reopened) == expected and len(expected) == 20
    reopened.close()


async def test_interrupted_swap_is_repaired(tmp_path: Path) -> None:
    live = tmp_path / "0"
    shard = Shard.open(live, "docs", 0)
    await shard.apply(upsert(VERSION_BASE, range(10), "old"), durable=True)
    shard.close()
    prepared = tmp_path / "0.new-abcd"
    new_points = [(5, (vector_pack([1.0, 2.0]), {"tag": "new"}, VERSION_BASE + 5))]
    shard_build_aside(prepared, "docs", 0, 7, new_points)
    live.rename(tmp_path / "0.old")  # the crash came between the two renames of a swap
    shard_directory_repair(live)
    assert not prepared.exists() and not (tmp_path / "0.old").exists()
    repaired = Shard.open(live, "docs", 0)
    assert len(repaired.points) == 10, "the old data must be put back"
    repaired.close()
