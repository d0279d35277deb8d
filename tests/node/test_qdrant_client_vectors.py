"""Vectors as Qdrant has them, driven by the real `qdrant-client` (REST) against a standalone node: named dense
vectors and sparse vectors stored, returned, queried with `using` (sparse by dot product), scored with
`score_threshold`, shown in collection info, and carried through collection, shard and full snapshots, and
a format-2 snapshot of the old single-vector format still restores."""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from node.snapshots.format import snapshot_read
from tests.node.client import NodeClient
from tests.processes import NodeProcess

LEGACY_SNAPSHOT = Path(__file__).parent / "data" / "legacy-format2.snapshot"


@pytest.fixture
def qdrant(node: NodeProcess) -> Iterator[QdrantClient]:
    client = QdrantClient(url=node.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    try:
        yield client
    finally:
        client.close()


def collection_make(qdrant: QdrantClient, name: str = "docs", shard_number: int = 1) -> None:
    qdrant.create_collection(
        name, shard_number=shard_number, on_disk_payload=False,
        vectors_config={"image": models.VectorParams(size=4, distance=models.Distance.DOT, on_disk=True),
                        "text": models.VectorParams(size=2, distance=models.Distance.EUCLID)},
        sparse_vectors_config={"words": models.SparseVectorParams(modifier=models.Modifier.NONE)})


def points_make(count: int) -> list[models.PointStruct]:
    points = []
    for i in range(1, count + 1):
        vectors: dict[str, Any] = {"image": [i / 10, 0.15, 0.25, 1.0]}
        if i % 2 == 0:
            vectors["words"] = models.SparseVector(indices=[i, 1000], values=[0.5, float(i)])
        if i % 3 == 0:
            vectors["text"] = [float(i), 0.0]
        points.append(models.PointStruct(id=i, vector=vectors, payload={"n": i}))
    return points


def test_named_and_sparse_vectors_are_stored_and_returned(qdrant: QdrantClient) -> None:
    collection_make(qdrant)
    qdrant.upsert("docs", points=points_make(12), wait=True)
    record = qdrant.retrieve("docs", ids=[6], with_vectors=True)[0]
    assert record.vector == {"image": [0.6, 0.15, 0.25, 1.0], "text": [6.0, 0.0],
                             "words": models.SparseVector(indices=[6, 1000], values=[0.5, 6.0])}
    only_words = qdrant.retrieve("docs", ids=[2, 3], with_vectors=["words"])
    assert {int(r.id): r.vector for r in only_words} == {
        2: {"words": models.SparseVector(indices=[2, 1000], values=[0.5, 2.0])}, 3: {}}
    params = qdrant.get_collection("docs").config.params
    assert params.vectors["image"].on_disk is True and params.vectors["text"].distance == models.Distance.EUCLID
    assert params.sparse_vectors == {"words": models.SparseVectorParams(modifier=models.Modifier.NONE)}
    assert params.on_disk_payload is False


async def test_values_are_printed_as_float32_shortest(node: NodeProcess) -> None:
    async with NodeClient(node.url) as client:
        await client.ok("PUT", "/collections/c", {"vectors": {"size": 3, "distance": "Dot"},
                                                  "sparse_vectors": {"s": {}}})
        await client.ok("PUT", "/collections/c/points?wait=true", {"points": [
            {"id": 1, "vector": {"": [0.15, 1 / 3, 0.1], "s": {"indices": [9, 2], "values": [0.7, 0.15]}}}]})
        status, raw = await client.call("GET", "/collections/c/points/1")
        assert status == 200
        text = raw["result"]["vector"]
        assert text == {"": [0.15, 0.33333334, 0.1], "s": {"indices": [2, 9], "values": [0.15, 0.7]}}
        info = await client.ok("GET", "/collections/c")
        assert info["config"]["params"]["vectors"] == {"size": 3, "distance": "Dot"}
        assert info["config"]["params"]["sparse_vectors"] == {"s": {}}
        assert info["config"]["params"]["on_disk_payload"] is True, "Qdrant's default"


def test_query_using_named_dense_and_sparse_vectors(qdrant: QdrantClient) -> None:
    collection_make(qdrant)
    qdrant.upsert("docs", points=points_make(12), wait=True)
    sparse = qdrant.query_points("docs", query=models.SparseVector(indices=[1000, 4], values=[1.0, 2.0]),
                                 using="words", limit=3)
    assert [(int(p.id), p.score) for p in sparse.points] == [(12, 12.0), (10, 10.0), (8, 8.0)]
    overlap_only = qdrant.query_points("docs", query=models.SparseVector(indices=[4], values=[2.0]), using="words")
    assert [(int(p.id), p.score) for p in overlap_only.points] == [(4, 1.0)], "no shared index: no score"
    text = qdrant.query_points("docs", query=[5.0, 0.0], using="text", limit=10)
    assert [int(p.id) for p in text.points] == [6, 3, 9, 12], "Euclid: nearest first; points without `text` left out"
    image = qdrant.query_points("docs", query=[1.0, 0.0, 0.0, 0.0], using="image", limit=2, with_vectors=["text"])
    assert [int(p.id) for p in image.points] == [12, 11] and image.points[0].vector == {"text": [12.0, 0.0]}
    by_id = qdrant.query_points("docs", query=4, using="words", limit=2)
    assert 4 not in [int(p.id) for p in by_id.points], "the example point is left out"


def test_score_threshold_keeps_scores_at_least_as_good(qdrant: QdrantClient, node: NodeProcess) -> None:
    collection_make(qdrant)
    qdrant.upsert("docs", points=points_make(12), wait=True)
    scores = [p.score for p in qdrant.query_points("docs", query=[1.0, 0.0, 0.0, 0.0], using="image",
                                                   limit=12).points]
    kept = qdrant.query_points("docs", query=[1.0, 0.0, 0.0, 0.0], using="image", limit=12,
                               score_threshold=scores[3]).points
    assert [p.score for p in kept] == scores[:4]
    near = qdrant.query_points("docs", query=[5.0, 0.0], using="text", score_threshold=1.5).points
    assert [int(p.id) for p in near] == [6], "Euclid: a threshold keeps distances at most as large"
    body = {"vector": {"name": "image", "vector": [1.0, 0.0, 0.0, 0.0]}, "limit": 12, "score_threshold": scores[1]}
    found = httpx.post(f"{node.url}/collections/docs/points/search", json=body, timeout=10).json()["result"]
    assert [hit["id"] for hit in found] == [12, 11]


def test_recommend_and_fusion_over_named_vectors(qdrant: QdrantClient) -> None:
    collection_make(qdrant)
    qdrant.upsert("docs", points=points_make(12), wait=True)
    recommended = qdrant.query_points("docs", query=models.RecommendQuery(
        recommend=models.RecommendInput(positive=[12], negative=[1])), using="image", limit=3).points
    assert [int(p.id) for p in recommended] == [11, 10, 9]
    fused = qdrant.query_points("docs", prefetch=[
        models.Prefetch(query=[1.0, 0.0, 0.0, 0.0], using="image", limit=3),
        models.Prefetch(query=models.SparseVector(indices=[1000], values=[1.0]), using="words", limit=3)],
        query=models.FusionQuery(fusion=models.Fusion.RRF), limit=10).points
    assert [int(p.id) for p in fused] == [12, 10, 11, 8], "ranks 1+1, 3+2, 2, 3 of the two prefetches"


def test_snapshots_carry_named_and_sparse_vectors(qdrant: QdrantClient, node: NodeProcess) -> None:
    collection_make(qdrant, shard_number=2)
    qdrant.upsert("docs", points=points_make(30), wait=True)
    before = {int(r.id): r.vector for r in qdrant.scroll("docs", limit=100, with_vectors=True)[0]}
    digests = httpx.get(f"{node.url}/internal/digests", timeout=10).json()["result"]["docs"]
    collection_snapshot = qdrant.create_snapshot("docs", wait=True)
    shard_snapshot = qdrant.create_shard_snapshot("docs", shard_id=1, wait=True)
    full_snapshot = qdrant.create_full_snapshot(wait=True)
    assert collection_snapshot and shard_snapshot and full_snapshot

    with tarfile.open(node.data_dir / "snapshots" / full_snapshot.name) as full:
        inner = next(m for m in full.getmembers() if m.name.startswith("docs-"))
        extracted = full.extractfile(inner)
        assert extracted is not None
        content = snapshot_read(extracted.read())
    assert {str(s): c.manifest["digest"] for s, c in content.shards.items()} == {
        s: info["digest"] for s, info in digests.items()}

    qdrant.delete_collection("docs")
    location = (node.data_dir / "snapshots" / "docs" / collection_snapshot.name).as_uri()
    assert qdrant.recover_snapshot("docs", location, wait=True) is True
    assert {int(r.id): r.vector for r in qdrant.scroll("docs", limit=100, with_vectors=True)[0]} == before
    assert qdrant.get_collection("docs").config.params.sparse_vectors is not None
    assert httpx.get(f"{node.url}/internal/digests", timeout=10).json()["result"]["docs"] == digests

    qdrant.update_vectors("docs", points=[models.PointVectors(id=i, vector={"image": [0.0, 0.0, 0.0, 0.0]})
                                          for i in range(1, 31)], wait=True)
    path = node.data_dir / "snapshots" / "docs" / "shards" / "1" / shard_snapshot.name
    with path.open("rb") as file:
        reply = httpx.post(f"{node.url}/collections/docs/shards/1/snapshots/upload?wait=true",
                           files={"snapshot": file}, timeout=30)
    assert reply.status_code == 200, reply.text
    restored = {int(r.id): r.vector for r in qdrant.scroll("docs", limit=100, with_vectors=True)[0]}
    changed = {i for i in restored if restored[i] != before[i]}
    assert changed and all(restored[i]["image"] == [0.0, 0.0, 0.0, 0.0] for i in changed), \
        "only shard 0 keeps the update; shard 1 is back as snapshotted"
    assert httpx.get(f"{node.url}/internal/digests", timeout=10).json()["result"]["docs"]["1"]["digest"] == \
        digests["1"]["digest"]


def test_format_2_snapshot_restores(qdrant: QdrantClient, node: NodeProcess) -> None:
    target = node.data_dir / "snapshots" / "legacy" / LEGACY_SNAPSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(LEGACY_SNAPSHOT, target)
    assert qdrant.recover_snapshot("legacy", target.as_uri(), wait=True) is True
    assert qdrant.count("legacy").count == 12
    record = qdrant.retrieve("legacy", ids=["0b6f5b2e-3d4c-4e58-9a3b-2f1d9c8e7a60"], with_vectors=True)[0]
    assert record.vector == [0.15, 0.3, 0.45, 0.6]
    assert qdrant.retrieve("legacy", ids=[3])[0].payload == {"n": 3, "tag": "old", "nested": {"a": 1, "b": 2}}
