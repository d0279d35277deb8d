"""Nothing invalid enters a shard's write-ahead log, and a log that holds a bad record anyway (a corrupted
disk) does not stop the node from starting.

Every route that appends to a log (the public points routes and the internal apply route that forwarded
updates and transfer replays use) refuses a malformed operation with 400 in Qdrant's envelope before
anything is written. A record that cannot be applied at start-up (bytes that are no msgpack, a record of
the wrong shape, an unknown operation) ends the replay of that shard: the shard keeps what it had up to
the record, the node log names the file and the offset, and every other shard is untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.protocol import MSGPACK_CONTENT_TYPE, vector_pack
from tests.helpers import points_expected, points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

APPLY = "/internal/collections/docs/shards/0/apply"
VERSION = 1 << 40


async def internal_apply(client: NodeClient, body: Any) -> tuple[int, Any]:
    return await client.call("POST", APPLY, data=msgpack.packb(body, use_bin_type=True),
                             headers={"Content-Type": MSGPACK_CONTENT_TYPE})


async def restart(node: NodeProcess, client: NodeClient, kill: bool = True) -> None:
    if kill:
        node.kill()
    else:
        node.terminate()
    node.start()
    await client.reconnect()


def upsert_of(point_id: Any, vector: Any, payload: Any = None) -> list[Any]:
    return ["upsert", VERSION, [[point_id, vector, {} if payload is None else payload]]]


GOOD_VECTOR = vector_pack([1.0, 2.0, 3.0, 4.0])
MALFORMED_OPERATIONS: dict[str, Any] = {
    "unknown kind": ["bogus-op", 1, []],
    "not a list": {"kind": "upsert"},
    "too short": ["upsert", VERSION],
    "version a string": ["upsert", "1", [[1, GOOD_VECTOR, {}]]],
    "version a bool": ["delete", True, [1]],
    "version negative": ["delete", -5, [1]],
    "data not a list": ["upsert", VERSION, {"id": 1}],
    "point not a triple": ["upsert", VERSION, [[1, GOOD_VECTOR]]],
    "id a float": upsert_of(1.5, GOOD_VECTOR),
    "id negative": upsert_of(-1, GOOD_VECTOR),
    "id a bool": upsert_of(True, GOOD_VECTOR),
    "id an upper-case uuid": upsert_of("6C9B5D8E-0F3A-4B2C-9D1E-7A8B9C0D1E2F", GOOD_VECTOR),
    "id not a uuid": upsert_of("not-a-uuid", GOOD_VECTOR),
    "vector a list": upsert_of(1, [1.0, 2.0, 3.0, 4.0]),
    "vector too short": upsert_of(1, vector_pack([1.0, 2.0, 3.0])),
    "vector torn": upsert_of(1, GOOD_VECTOR + b"\0"),
    "payload a list": upsert_of(1, GOOD_VECTOR, [1, 2]),
    "delete of a dict": ["delete", VERSION, [{"id": 1}]],
    "set_payload not a dict": ["set_payload", VERSION, [[1, "x"]]],
}


async def test_bogus_operation_is_refused_and_the_node_restarts(node: NodeProcess, client: NodeClient) -> None:
    """The request of issue 14 (defect 1): it used to answer 500 and brick the node at every start."""
    await client.collection_create("docs")
    points = points_make(range(20))
    await client.points_upsert("docs", points)
    status, reply = await internal_apply(client, {"ops": [["bogus-op", 1, []]], "durable": True})
    assert status == 400, reply
    assert "bogus-op" in reply["status"]["error"] and isinstance(reply["time"], float)
    await restart(node, client)
    assert await client.points_all("docs") == points_expected(points)


@pytest.mark.parametrize("name", sorted(MALFORMED_OPERATIONS))
async def test_malformed_operations_are_refused_before_the_log(node: NodeProcess, client: NodeClient,
                                                              name: str) -> None:
    await client.collection_create("docs")
    points = points_make(range(10))
    await client.points_upsert("docs", points)
    wal = node.data_dir / "collections" / "docs" / "shards" / "0"
    sizes = {path.name: path.stat().st_size for path in wal.glob("wal-*.log")}
    status, reply = await internal_apply(client, {"ops": [MALFORMED_OPERATIONS[name]], "durable": True})
    assert status == 400, reply
    assert reply["status"]["error"].startswith("Wrong input: ")
    assert {path.name: path.stat().st_size for path in wal.glob("wal-*.log")} == sizes
    await restart(node, client)
    assert await client.points_all("docs") == points_expected(points)


async def test_a_batch_with_one_malformed_operation_applies_none(node: NodeProcess, client: NodeClient) -> None:
    await client.collection_create("docs")
    good = upsert_of(7, GOOD_VECTOR, {"a": 1})
    status, reply = await internal_apply(client, {"ops": [good, ["bogus-op", 1, []]], "durable": True})
    assert status == 400, reply
    assert await client.count("docs") == 0
    status, reply = await internal_apply(client, {"ops": [good], "durable": True})
    assert status == 200 and msgpack.unpackb(reply)["seq"] >= 1
    assert await client.points_all("docs") == {7: ([1.0, 2.0, 3.0, 4.0], {"a": 1})}


@pytest.mark.parametrize("body", [{"durable": True}, {"ops": "x"}, {"ops": [1]}, ["ops"], 5])
async def test_malformed_apply_bodies_are_400(node: NodeProcess, client: NodeClient, body: Any) -> None:
    await client.collection_create("docs")
    status, reply = await internal_apply(client, body)
    assert status == 400, reply
    assert "error" in reply["status"]


# --- a log that holds a bad record anyway ------------------------------------------------------------

def last_segment(shard_dir: Path) -> Path:
    return sorted(shard_dir.glob("wal-*.log"))[-1]


GARBAGE_RECORDS: dict[str, bytes] = {
    "not msgpack": b"\xc1\xc1\xc1 garbage that is no msgpack",
    "not a record": msgpack.packb("a string where a record belongs"),
    "unknown kind": msgpack.packb([99, "bogus-op", 1, []]),
    "malformed upsert": msgpack.packb([99, "upsert", VERSION, [[1, b"\0\0", {}]]], use_bin_type=True),
}


@pytest.mark.parametrize("name", sorted(GARBAGE_RECORDS))
async def test_a_bad_record_in_a_log_does_not_stop_the_node(node: NodeProcess, client: NodeClient,
                                                           name: str) -> None:
    await client.collection_create("docs", shard_number=2)
    points = points_make(range(60))
    await client.points_upsert("docs", points)
    node.terminate()
    shard_dir = node.data_dir / "collections" / "docs" / "shards" / "0"
    segment = last_segment(shard_dir)
    offset = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(GARBAGE_RECORDS[name])
    node.start()
    await client.reconnect()
    assert await client.points_all("docs") == points_expected(points), "the shard lost what it had"
    log = node.log_path.read_text()
    assert f"{segment}" in log and f"offset {offset}" in log, node.log_tail()
    # the node keeps working, and what it acknowledges now survives further restarts
    later = points_make(range(1000, 1030), tag="later")
    await client.points_upsert("docs", later)
    for kill in (True, False):
        await restart(node, client, kill)
        assert await client.points_all("docs") == points_expected(points + later)


async def test_records_after_a_bad_one_are_not_replayed(node: NodeProcess, client: NodeClient) -> None:
    """The shard keeps what it had up to the bad record, nothing after it (and says so in the node log)."""
    await client.collection_create("docs")
    first = points_make(range(10))
    await client.points_upsert("docs", first)
    node.terminate()
    segment = last_segment(node.data_dir / "collections" / "docs" / "shards" / "0")
    offset = segment.stat().st_size
    after = [99_999, "upsert", VERSION, [[500, GOOD_VECTOR, {"after": True}]]]
    with segment.open("ab") as file:
        file.write(b"\xc1" + msgpack.packb(after, use_bin_type=True))
    node.start()
    await client.reconnect()
    assert await client.points_all("docs") == points_expected(first)
    assert f"offset {offset}" in node.log_path.read_text()


async def test_a_public_batch_with_one_bad_point_writes_nothing(node: NodeProcess, client: NodeClient) -> None:
    """Whatever the parser lets through, the shards' check refuses the whole request before any shard
    applies its part (issue 14, defect 4 wrote 12 of 20 points and answered 500)."""
    await client.collection_create("docs", shard_number=3)
    points = points_make(range(20))
    bad = {"id": "18446744073709551616", "vector": [1.0, 2.0, 3.0, 4.0], "payload": {}}
    status, reply = await client.call("PUT", "/collections/docs/points", {"points": [*points, bad]},
                                      params={"wait": "true"})
    assert status == 400, reply
    assert await client.count("docs") == 0
    await restart(node, client)
    assert await client.count("docs") == 0
