"""Named and sparse vectors in the store, without processes: canonical point bytes (node/protocol.py), the
shard operations that change points (node/storage/operations.py), the snapshot format's versions, and the
float32 printing Qdrant does. The digest must count every vector and still not depend on write order or
payload key order; a malformed operation must never reach the WAL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.errors import BadInput
from node.protocol import point_content, shard_digest, sparse_pack, vector_pack
from node.snapshots.format import FORMAT_VERSION, shard_manifest, shard_tar_chunks, snapshot_read
from node.storage.operations import OperationSchema, operation_check
from node.storage.shard import Shard, record_decode, version_clock
from node.storage.vectors import VectorSpec, float32_shortest, vectors_out, vectors_parse
from node.storage.wal import DAMAGE_MARKER, segment_paths

LEGACY_SNAPSHOT = Path(__file__).parent / "data" / "legacy-format2.snapshot"
VERSION_BASE = version_clock()
SPEC = VectorSpec.from_config({"vectors": {"image": {"size": 2, "distance": "Dot"}, "text": {"size": 3,
                                                                                           "distance": "Cosine"}},
                               "sparse_vectors": {"words": {}}})
OPENED: list[Shard] = []


@pytest.fixture(autouse=True)
def shards_closed() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def shard_open(path: Path, schema: OperationSchema | None = None) -> Shard:
    shard = Shard.open(path, "docs", 0, schema)
    OPENED.append(shard)
    return shard


def named(image: list[float], words: dict[int, float] | None = None) -> dict[str, Any]:
    vectors: dict[str, Any] = {"image": vector_pack(image)}
    if words is not None:
        vectors["words"] = sparse_pack(words.keys(), words.values())
    return vectors


def test_canonical_bytes_count_every_vector_in_any_order() -> None:
    unnamed = point_content(1, [0.5, 1.5], {"a": 1})
    assert point_content(1, {"": [0.5, 1.5]}, {"a": 1}) == unnamed, "the unnamed vector is the name \"\""
    both = point_content(1, {"image": [1.0, 2.0], "words": {"indices": [7, 2], "values": [0.5, 0.25]}}, {})
    reordered = point_content(1, {"words": {"indices": [2, 7], "values": [0.25, 0.5]}, "image": [1.0, 2.0]}, {})
    assert both == reordered
    assert both != point_content(1, {"image": [1.0, 2.0]}, {}), "a sparse vector counts"
    assert both != point_content(1, {"picture": [1.0, 2.0], "words": {"indices": [2, 7], "values": [0.25, 0.5]}}, {})
    assert point_content(1, {"words": {"indices": [0, 1], "values": [1.0, 2.0]}}, {}) != point_content(
        1, {"words": [1.0, 2.0]}, {}), "a sparse vector is not the dense vector of its values"


def test_digest_does_not_depend_on_write_order_or_payload_key_order() -> None:
    points = [(1, {"image": [1.0, 2.0], "words": {"indices": [3, 1], "values": [0.5, 0.5]}}, {"b": 1, "a": {"y": 1, "x": 2}}),
              (2, [0.25, 0.75], {}),
              ("0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60", {}, {"k": "v"})]
    digests = {shard_digest(order) for order in itertools.permutations(points)}
    assert len(digests) == 1
    assert shard_digest([(1, points[0][1], {"a": {"x": 2, "y": 1}, "b": 1}), *points[1:]]) in digests
    changed = [(1, {"image": [1.0, 2.0], "words": {"indices": [3, 1], "values": [0.5, 0.25]}}, points[0][2]),
               *points[1:]]
    assert shard_digest(changed) not in digests, "one sparse value changed changes the digest"


def test_vectors_print_as_qdrant_prints_float32() -> None:
    assert float32_shortest(0.15) == 0.15 and str(float32_shortest(0.15)) == "0.15"
    assert float32_shortest(1 / 3) == 0.33333334
    assert float32_shortest(16777217.0) == 16777216.0
    assert float32_shortest(1e-45) == 1e-45
    packed = vectors_parse({"image": [0.1, 0.2], "words": {"indices": [9, 4], "values": [0.7, 0.3]}}, SPEC)
    assert vectors_out(packed, True) == {"image": [0.1, 0.2], "words": {"indices": [4, 9], "values": [0.3, 0.7]}}
    assert vectors_out(packed, ["words"]) == {"words": {"indices": [4, 9], "values": [0.3, 0.7]}}
    assert vectors_out(packed, False) is None


@pytest.mark.parametrize("vector, message", [
    ({"image": [1.0]}, "Vector dimension error: expected dim: 2, got 1"),
    ({"nope": [1.0, 2.0]}, "Not existing vector name error: nope"),
    ([1.0, 2.0], "Not existing vector name error: "),
    ({"words": {"indices": [1, 2], "values": [0.5]}}, "must be the same length as indices"),
    ({"words": {"indices": [1, 1], "values": [0.5, 0.5]}}, "must be unique"),
    ({"image": {"indices": [1], "values": [0.5]}}, "vector `image` is dense"),
])
def test_point_vectors_are_checked_against_the_config(vector: Any, message: str) -> None:
    with pytest.raises(Exception) as raised:
        vectors_parse(vector, SPEC)
    assert message in raised.value.args[0]


async def test_partial_updates_change_only_what_they_name_and_survive_replay(tmp_path: Path) -> None:
    shard = shard_open(tmp_path / "0")
    await shard.apply(["upsert", VERSION_BASE + 1, [[1, named([1.0, 2.0], {5: 0.5}), {"a": 1, "b": {"c": 2}}],
                                                    [2, named([3.0, 4.0]), {"a": 2}]]], durable=True)
    await shard.apply(["update_vectors", VERSION_BASE + 2, [[1, {"image": vector_pack([9.0, 9.0])}],
                                                            [3, {"image": vector_pack([0.0, 0.0])}]]], durable=True)
    await shard.apply(["delete_vectors", VERSION_BASE + 3, {"ids": [2], "names": ["image"]}], durable=True)
    await shard.apply(["set_payload", VERSION_BASE + 4, {"ids": [1], "payload": {"d": 4}, "key": "b"}], durable=True)
    await shard.apply(["delete_payload", VERSION_BASE + 5, {"ids": [1], "keys": ["a"]}], durable=True)
    await shard.apply(["overwrite_payload", VERSION_BASE + 6, {"ids": [2], "payload": {"z": 0}, "key": None}],
                      durable=True)
    await shard.apply(["set_payload", VERSION_BASE + 3, {"ids": [2], "payload": {"late": 1}, "key": None}],
                      durable=True)  # older than the overwrite: last writer wins
    assert shard.points[1][0] == named([9.0, 9.0], {5: 0.5}), "update_vectors keeps the vectors it does not name"
    assert shard.points[1][1] == {"b": {"c": 2, "d": 4}}
    assert shard.points[2][:2] == ({}, {"z": 0})
    assert 3 not in shard.points, "partial updates never create points"
    expected, digest = dict(shard.points), shard.digest
    shard.close()
    reopened = shard_open(tmp_path / "0")
    assert dict(reopened.points) == expected and reopened.digest == digest
    await reopened.apply(["clear_payload", VERSION_BASE + 7, {"ids": [1, 2]}], durable=True)
    assert reopened.points[1][1] == {} and reopened.points[2][1] == {}


@pytest.mark.parametrize("operation", [
    ["upsert", 1, [[1, [1.0, 2.0], {}]]],  # vectors not packed
    ["upsert", 1, [[-1, b"\0\0\0\0", {}]]],
    ["upsert", 1, [[1, {"words": [b"\0\0\0\0", b""]}, {}]]],  # indices and values differ in count
    ["set_payload", 1, {"ids": [1], "payload": "x", "key": None}],
    ["delete_payload", 1, {"ids": [1], "keys": ["a..b"]}],
    ["upsert_everything", 1, []],
    ["delete", "soon", [1]],
])
async def test_malformed_operations_never_enter_the_wal(tmp_path: Path, operation: list[Any]) -> None:
    shard = shard_open(tmp_path / "0")
    await shard.apply(["upsert", VERSION_BASE, [[1, named([1.0, 2.0]), {"a": 1}]]], durable=True)
    wal_bytes = sum(path.stat().st_size for _, path in segment_paths(shard.directory))
    with pytest.raises(BadInput):
        await shard.apply(operation, durable=True)
    assert shard.seq == 1 and sum(path.stat().st_size for _, path in segment_paths(shard.directory)) == wal_bytes
    shard.close()
    assert shard_open(tmp_path / "0").seq == 1


SCHEMA = OperationSchema(SPEC)
IDS = {"ids": [1]}


@pytest.mark.parametrize("operation, words", [
    (["upsert", 1, [[1, {"image": vector_pack([1.0, 2.0, 3.0])}, {}]]], "vector `image` of point 1 has 12 bytes, "
                                                                        "expected 8 (2 float32 values)"),
    (["upsert", 1, [[1, vector_pack([1.0, 2.0]), {}]]], "the unnamed vector of point 1 is not in the collection"),
    (["upsert", 1, [[1, {"picture": vector_pack([1.0, 2.0])}, {}]]], "vector `picture` of point 1 is not in"),
    (["upsert", 1, [[1, {"words": vector_pack([1.0])}, {}]]], "vector `words` of point 1 is sparse"),
    (["upsert", 1, [[1, {"image": sparse_pack([1, 2], [0.5, 0.5])}, {}]]], "vector `image` of point 1 is dense"),
    (["upsert", 1, [[1, {"words": [vector_pack([0.0]), b""]}, {}]]], "bytes of equal length"),
    (["upsert", 1, [[1, {"words": [sparse_pack([3], [0.5])[0] * 2, vector_pack([0.5, 0.5])]}, {}]]],
     "indices that repeat"),
    (["upsert", 1, [[1, {"words": [sparse_pack([9], [0.5])[0] + sparse_pack([2], [0.5])[0],
                                   vector_pack([0.5, 0.5])]}, {}]]], "not in ascending order"),
    (["upsert", 1, [[1, {}, None]]], "the payload of point 1 must be an object"),
    (["upsert", 1, [["6C9B5D8E-0F3A-4B2C-9D1E-7A8B9C0D1E2F", {}, {}]]], "is not an unsigned 64-bit integer or a UUID"),
    (["update_vectors", 1, [[1, {"text": vector_pack([1.0, 2.0])}]]], "vector `text` of point 1 has 8 bytes"),
    (["update_vectors", 1, [[1 << 64, {}]]], "point id 18446744073709551616 is not"),
    (["delete_vectors", 1, {**IDS, "names": ["image", "nope"]}], "vector `nope` is not in the collection"),
    (["delete_vectors", 1, {"ids": "1", "names": []}], "the point ids must be a list"),
    (["overwrite_payload", 1, [[1, {"a": 1}]]], "data must be an object with `ids`"),
    (["set_payload", 1, {**IDS, "payload": {"a": 1}, "key": 5}], "key 5 must be text"),
    (["set_payload", 1, [[1, ["a"]]]], "the payload of point 1 must be an object"),
    (["clear_payload", 1, [1]], "data must be an object with `ids`"),
    (["delete_payload", 1, {**IDS, "keys": "a"}], "`keys` must be a list of key paths"),
    (["delete", 1 << 64, [1]], "version 18446744073709551616 is not an unsigned 64-bit integer"),
])
def test_every_kind_is_checked_against_the_collection(operation: list[Any], words: str) -> None:
    with pytest.raises(BadInput) as raised:
        operation_check(operation, SCHEMA)
    assert words in raised.value.message


@pytest.mark.parametrize("operation", [
    ["upsert", 1, [[1, named([1.0, 2.0], {7: 0.5, 2: 0.25}), {"a": 1}], [2, {}, {}],
                   ["0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60", {"text": vector_pack([1.0, 2.0, 3.0])}, {}]]],
    ["update_vectors", 1, [[1, {"words": sparse_pack([], [])}]]],
    ["delete_vectors", 1, {**IDS, "names": ["image", "words"]}],
    ["set_payload", 1, {**IDS, "payload": {"a": 1}, "key": "b[0].c"}],
    ["set_payload", 1, [[1, {"a": 1}]]],  # a format-2 log's form
    ["overwrite_payload", 1, {**IDS, "payload": {}, "key": None}],
    ["delete_payload", 1, {**IDS, "keys": ["a", "b.c"]}],
    ["clear_payload", 1, IDS],
    ["delete", 1, [1, "0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"]],
])
def test_well_formed_operations_of_every_kind_pass(operation: list[Any]) -> None:
    operation_check(operation, SCHEMA)


async def test_a_format_2_log_replays_and_a_record_wrong_for_the_collection_is_damage(tmp_path: Path) -> None:
    """A record the collection's vectors refuse ends replay like any damage; the old set_payload form does not."""
    shard = shard_open(tmp_path / "0", SCHEMA)
    await shard.apply(["upsert", VERSION_BASE + 1, [[1, named([1.0, 2.0]), {"a": 1}]]], durable=True)
    await shard.apply(["set_payload", VERSION_BASE + 2, [[1, {"b": 2}]]], durable=True)
    shard.wal.append([3, "upsert", VERSION_BASE + 3, [[2, {"image": vector_pack([1.0])}, {}]]])  # type: ignore[union-attr]
    await shard.apply(["upsert", VERSION_BASE + 4, [[3, named([5.0, 6.0]), {}]]], durable=True)
    shard.close()
    reopened = shard_open(tmp_path / "0", SCHEMA)
    assert reopened.points[1][1] == {"a": 1, "b": 2} and set(reopened.points) == {1}
    assert reopened.log_damage is not None and "vector `image` of point 2 has 4 bytes" in reopened.log_damage.reason
    assert (reopened.directory / DAMAGE_MARKER).exists()


def test_snapshot_round_trip_with_named_and_sparse_vectors(tmp_path: Path) -> None:
    shard = shard_open(tmp_path / "src")
    for point_id in range(50):
        shard._put(point_id, (named([point_id / 4, 1.0], {point_id: 0.5, 1000: 1.0}), {"n": point_id}, 10 + point_id))
    shard._put(50, ({}, {"empty": True}, 5))
    view = shard.view()
    config = {"vectors": {"image": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"words": {}}, "shard_number": 1}
    data = b"".join(shard_tar_chunks(shard_manifest("docs", 0, view.info, config), view, 512))
    content = snapshot_read(data).shards[0]
    assert content.manifest["format_version"] == FORMAT_VERSION == 3
    assert content.manifest["digest"] == shard.digest == shard_digest(
        (pid, record[0], record[1]) for pid, record in shard.points.items())
    for point_id, raw, version in zip(content.points.ids, content.points.contents, content.points.versions, strict=True):
        assert record_decode(point_id, raw, version) == shard.points[point_id]


def test_format_2_snapshot_of_one_unnamed_vector_still_reads() -> None:
    content = snapshot_read(LEGACY_SNAPSHOT.read_bytes())
    assert content.manifest["format_version"] == 2
    shard = content.shards[0]
    records = {pid: record_decode(pid, raw, 0) for pid, raw in zip(shard.points.ids, shard.points.contents, strict=True)}
    assert len(records) == 12 and all(type(record[0]) is bytes for record in records.values())
    assert shard.manifest["digest"] == shard_digest((pid, record[0], record[1]) for pid, record in records.items())
    assert vectors_out(records["0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"][0], True) == [0.15, 0.3, 0.45, 0.6]
