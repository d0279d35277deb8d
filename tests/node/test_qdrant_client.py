"""The real `qdrant-client` (REST) drives a standalone node: collections, points and every snapshot call.

qdrant-client is synchronous, so these are plain sync tests. If the node's answers did not match Qdrant's
models (envelope, SnapshotDescription, status codes), the client would raise or return the wrong thing.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient, models

from tests.processes import NodeProcess

VECTOR_SIZE = 4


@pytest.fixture
def qdrant(node: NodeProcess) -> Iterator[QdrantClient]:
    client = QdrantClient(url=node.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    try:
        yield client
    finally:
        client.close()


def point_structs(count: int, tag: str, start: int = 0) -> list[models.PointStruct]:
    return [models.PointStruct(id=start + index, vector=[float(index % 7), 1.0, 0.5, float(index % 3)],
                               payload={"tag": tag, "n": start + index}) for index in range(count)]


def payload_tags(client: QdrantClient, name: str) -> dict[int, str]:
    points, _ = client.scroll(name, limit=1000, with_payload=True)
    return {int(point.id): point.payload["tag"] for point in points if point.payload is not None}


def test_collections_and_points(qdrant: QdrantClient) -> None:
    assert not qdrant.collection_exists("docs")
    qdrant.create_collection("docs", vectors_config=models.VectorParams(size=VECTOR_SIZE,
                                                                         distance=models.Distance.DOT),
                             shard_number=2)
    assert qdrant.collection_exists("docs")
    result = qdrant.upsert("docs", points=point_structs(50, "a"), wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    info = qdrant.get_collection("docs")
    assert info.points_count == 50 and info.config.params.shard_number == 2
    records = qdrant.retrieve("docs", ids=[3, 4, 999], with_vectors=True)
    assert sorted(int(record.id) for record in records) == [3, 4]
    assert records[0].vector == [3.0, 1.0, 0.5, 0.0] or records[1].vector == [3.0, 1.0, 0.5, 0.0]
    assert qdrant.count("docs").count == 50
    flt = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=10))])
    assert qdrant.count("docs", count_filter=flt).count == 10
    page, next_offset = qdrant.scroll("docs", limit=20)
    assert [int(point.id) for point in page] == list(range(20)) and next_offset == 20
    hits = qdrant.query_points("docs", query=[1.0, 0.0, 0.0, 0.0], limit=3).points
    assert len(hits) == 3 and all(hit.score == 6.0 for hit in hits)
    qdrant.delete("docs", points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
    assert qdrant.count("docs").count == 47


def test_collection_and_full_snapshots(qdrant: QdrantClient, node: NodeProcess) -> None:
    qdrant.create_collection("docs", vectors_config=models.VectorParams(size=VECTOR_SIZE,
                                                                         distance=models.Distance.COSINE))
    qdrant.upsert("docs", points=point_structs(30, "old"), wait=True)
    snapshot = qdrant.create_snapshot("docs", wait=True)
    assert snapshot is not None and snapshot.name.startswith("docs-1-") and snapshot.size > 0
    assert [item.name for item in qdrant.list_snapshots("docs")] == [snapshot.name]
    assert qdrant.create_snapshot("docs", wait=False) is None  # 202 without a result

    qdrant.upsert("docs", points=point_structs(30, "new"), wait=True)
    location = (node.data_dir / "snapshots" / "docs" / snapshot.name).as_uri()
    assert qdrant.recover_snapshot("docs", location, checksum=snapshot.checksum,
                                   priority=models.SnapshotPriority.SNAPSHOT, wait=True) is True
    assert set(payload_tags(qdrant, "docs").values()) == {"old"}

    qdrant.upsert("docs", points=point_structs(30, "new"), wait=True)
    data = (node.data_dir / "snapshots" / "docs" / snapshot.name).read_bytes()
    reply = qdrant.http.snapshots_api.recover_from_uploaded_snapshot(
        "docs", wait=True, priority=models.SnapshotPriority.REPLICA, checksum=hashlib.sha256(data).hexdigest(),
        snapshot=io.BytesIO(data))
    assert reply.result is True
    assert set(payload_tags(qdrant, "docs").values()) == {"old"}

    for item in qdrant.list_snapshots("docs"):
        assert qdrant.delete_snapshot("docs", item.name, wait=True) is True
    assert qdrant.list_snapshots("docs") == []

    full = qdrant.create_full_snapshot(wait=True)
    assert full is not None and full.name.startswith("full-snapshot-")
    assert [item.name for item in qdrant.list_full_snapshots()] == [full.name]
    assert qdrant.delete_full_snapshot(full.name, wait=True) is True
    assert qdrant.list_full_snapshots() == []


def test_shard_snapshots(qdrant: QdrantClient, node: NodeProcess) -> None:
    qdrant.create_collection("docs", vectors_config=models.VectorParams(size=VECTOR_SIZE,
                                                                         distance=models.Distance.COSINE))
    qdrant.upsert("docs", points=point_structs(20, "old"), wait=True)
    snapshot = qdrant.create_shard_snapshot("docs", 0, wait=True)
    assert snapshot is not None and snapshot.name.startswith("docs-shard-0-")
    assert [item.name for item in qdrant.list_shard_snapshots("docs", 0)] == [snapshot.name]

    qdrant.upsert("docs", points=point_structs(20, "new"), wait=True)
    assert qdrant.recover_shard_snapshot("docs", 0, snapshot.name, checksum=snapshot.checksum,
                                         priority=models.SnapshotPriority.NO_SYNC, wait=True) is True
    assert set(payload_tags(qdrant, "docs").values()) == {"old"}

    qdrant.upsert("docs", points=point_structs(20, "new"), wait=True)
    with urllib.request.urlopen(f"{node.url}/collections/docs/shards/0/snapshots/{snapshot.name}",
                                timeout=10) as response:
        data = response.read()
    reply = qdrant.http.snapshots_api.recover_shard_from_uploaded_snapshot(
        "docs", 0, wait=True, priority=models.SnapshotPriority.SNAPSHOT, snapshot=io.BytesIO(data))
    assert reply.result is True
    assert set(payload_tags(qdrant, "docs").values()) == {"old"}

    assert qdrant.delete_shard_snapshot("docs", 0, snapshot.name, wait=True) is True
    assert qdrant.list_shard_snapshots("docs", 0) == []
