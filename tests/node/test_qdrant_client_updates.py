"""The points API that replication tests lean on, driven by the real `qdrant-client` (REST) against a
standalone node: payload set (also at a nested key), overwrite, delete and clear; vectors update and delete;
batches of these; points selected by ids or by a filter in Qdrant's syntax. An update naming a missing point
and a batch with one bad operation write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.processes import NodeProcess


@pytest.fixture
def qdrant(node: NodeProcess) -> Iterator[QdrantClient]:
    client = QdrantClient(url=node.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    try:
        yield client
    finally:
        client.close()


PAYLOADS: dict[int, dict[str, Any]] = {
    1: {"city": "Berlin", "country": {"name": "Germany", "cities": [{"name": "Berlin"}, {"name": "Bonn"}]}},
    2: {"city": ["Berlin", "London"], "tags": []},
    3: {"city": None, "price": 9.5},
    4: {"city": "Paris", "country": {"name": "France"}},
}


def collection_fill(qdrant: QdrantClient, shard_number: int = 2) -> None:
    qdrant.create_collection("docs", shard_number=shard_number,
                             vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT),
                                             "b": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"s": models.SparseVectorParams()})
    qdrant.upsert("docs", wait=True, points=[
        models.PointStruct(id=i, payload=payload, vector={"a": [float(i), 1.0], "b": [1.0, float(i)],
                                                          "s": models.SparseVector(indices=[i], values=[1.0])})
        for i, payload in PAYLOADS.items()])


def payloads(qdrant: QdrantClient) -> dict[int, dict[str, Any]]:
    return {int(r.id): r.payload or {} for r in qdrant.scroll("docs", limit=100)[0]}


def vectors(qdrant: QdrantClient) -> dict[int, Any]:
    return {int(r.id): r.vector for r in qdrant.scroll("docs", limit=100, with_vectors=True)[0]}


def shard_seqs(node: NodeProcess) -> dict[str, int]:
    shards = httpx.get(f"{node.url}/internal/digests", timeout=10).json()["result"]["docs"]
    return {shard: info["seq"] for shard, info in shards.items()}


def test_payload_set_overwrite_delete_and_clear(qdrant: QdrantClient) -> None:
    collection_fill(qdrant)
    qdrant.set_payload("docs", payload={"seen": True}, points=[1, 2], wait=True)
    qdrant.set_payload("docs", payload={"capital": "Berlin"}, key="country", points=[1], wait=True)
    qdrant.set_payload("docs", payload={"visited": 1}, key="country.cities[]", points=[1], wait=True)
    qdrant.overwrite_payload("docs", payload={"only": "this"}, points=[4], wait=True)
    qdrant.delete_payload("docs", keys=["price"], points=models.FilterSelector(filter=models.Filter(
        must=[models.IsNullCondition(is_null=models.PayloadField(key="city"))])), wait=True)
    found = payloads(qdrant)
    assert found[1] == {"city": "Berlin", "seen": True, "country": {
        "name": "Germany", "capital": "Berlin", "cities": [{"name": "Berlin", "visited": 1},
                                                           {"name": "Bonn", "visited": 1}]}}
    assert found[2] == {**PAYLOADS[2], "seen": True} and found[3] == {"city": None} and found[4] == {"only": "this"}
    qdrant.clear_payload("docs", points_selector=models.FilterSelector(filter=models.Filter(must=[
        models.FieldCondition(key="country.cities[].name", match=models.MatchValue(value="Bonn"))])), wait=True)
    assert payloads(qdrant)[1] == {} and payloads(qdrant)[2] != {}


def test_vectors_update_and_delete(qdrant: QdrantClient) -> None:
    collection_fill(qdrant)
    qdrant.update_vectors("docs", points=[models.PointVectors(id=1, vector={"b": [7.0, 7.0]}),
                                          models.PointVectors(id=2, vector={"s": models.SparseVector(
                                              indices=[5, 3], values=[0.5, 0.25])})], wait=True)
    qdrant.delete_vectors("docs", vectors=["a", "s"], points=[3], wait=True)
    found = vectors(qdrant)
    assert found[1] == {"a": [1.0, 1.0], "b": [7.0, 7.0], "s": models.SparseVector(indices=[1], values=[1.0])}
    assert found[2]["s"] == models.SparseVector(indices=[3, 5], values=[0.25, 0.5])
    assert found[3] == {"b": [1.0, 3.0]}
    hits = qdrant.query_points("docs", query=[1.0, 0.0], using="a", limit=10).points
    assert 3 not in [int(p.id) for p in hits], "a point without vector `a` is not scored by it"
    with pytest.raises(UnexpectedResponse) as raised:
        qdrant.delete_vectors("docs", vectors=["nope"], points=[1], wait=True)
    assert raised.value.status_code == 400 and b"Not existing vector name error: nope" in raised.value.content


def test_updates_of_a_missing_point_write_nothing(qdrant: QdrantClient, node: NodeProcess) -> None:
    collection_fill(qdrant)
    seqs = shard_seqs(node)
    for update in (lambda: qdrant.set_payload("docs", payload={"x": 1}, points=[1, 99], wait=True),
                   lambda: qdrant.update_vectors("docs", points=[models.PointVectors(id=1, vector={"a": [0.0, 0.0]}),
                                                                 models.PointVectors(id=99, vector={"a": [0.0, 0.0]})]),
                   lambda: qdrant.clear_payload("docs", points_selector=[99], wait=True)):
        with pytest.raises(UnexpectedResponse) as raised:
            update()
        assert raised.value.status_code == 404 and b"No point with id 99 found" in raised.value.content
    assert shard_seqs(node) == seqs and payloads(qdrant) == PAYLOADS


def test_batch_applies_in_order_and_a_bad_operation_writes_nothing(qdrant: QdrantClient, node: NodeProcess) -> None:
    collection_fill(qdrant)
    results = qdrant.batch_update_points("docs", wait=True, update_operations=[
        models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(
            id=5, vector={"a": [5.0, 1.0]}, payload={"city": "Rome"})])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"new": 1}, points=[5])),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"o": 1}, points=[4])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["city"], points=[1])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[2])),
        models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[
            models.PointVectors(id=5, vector={"b": [2.0, 2.0]})])),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(vector=["b"], points=[1])),
        models.DeleteOperation(delete=models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="price", range=models.Range(gt=9))]))),
    ])
    assert len(results) == 8 and all(r.status == models.UpdateStatus.COMPLETED for r in results)
    found = payloads(qdrant)
    assert found == {1: {"country": PAYLOADS[1]["country"]}, 2: {}, 4: {"o": 1}, 5: {"city": "Rome", "new": 1}}
    assert vectors(qdrant)[5] == {"a": [5.0, 1.0], "b": [2.0, 2.0]} and "b" not in vectors(qdrant)[1]

    seqs, before = shard_seqs(node), payloads(qdrant)
    bad = {"operations": [{"upsert": {"points": [{"id": 6, "vector": {"a": [1.0, 1.0]}}]}},
                          {"set_payload": {"payload": {"x": 1}, "points": [1]}},
                          {"upsert": {"points": [{"id": 7, "vector": {"a": [1.0]}}]}}]}
    reply = httpx.post(f"{node.url}/collections/docs/points/batch?wait=true", json=bad, timeout=10)
    assert reply.status_code == 400 and "Vector dimension error" in reply.text
    assert shard_seqs(node) == seqs and payloads(qdrant) == before


def test_filters_in_qdrant_syntax(qdrant: QdrantClient) -> None:
    collection_fill(qdrant)

    def ids(*must: Any, **clauses: Any) -> list[int]:
        flt = models.Filter(must=list(must) or None, **clauses)
        return sorted(int(r.id) for r in qdrant.scroll("docs", scroll_filter=flt, limit=100)[0])

    assert ids(models.FieldCondition(key="city", match=models.MatchAny(any=["London", "Paris"]))) == [2, 4]
    assert ids(models.FieldCondition(key="city", match=models.MatchExcept(**{"except": ["Berlin"]}))) == [2, 4]
    assert ids(models.FieldCondition(key="country.name", match=models.MatchValue(value="France"))) == [4]
    assert ids(models.FieldCondition(key="country.cities[].name", match=models.MatchText(text="bonn"))) == [1]
    assert ids(models.IsEmptyCondition(is_empty=models.PayloadField(key="city"))) == [3]
    assert ids(models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))) == [1, 2, 3, 4]
    assert ids(models.FieldCondition(key="city", values_count=models.ValuesCount(gte=2))) == [2]
    assert ids(models.HasIdCondition(has_id=[1, 3, 42])) == [1, 3]
    assert ids(models.NestedCondition(nested=models.Nested(key="country.cities", filter=models.Filter(must=[
        models.FieldCondition(key="name", match=models.MatchValue(value="Bonn"))])))) == [1]
    assert ids(must_not=[models.FieldCondition(key="price", range=models.Range(lt=10))]) == [1, 2, 4]
    assert ids(min_should=models.MinShould(min_count=2, conditions=[
        models.HasIdCondition(has_id=[2, 4]),
        models.FieldCondition(key="city", match=models.MatchValue(value="Berlin"))])) == [2]
    assert qdrant.count("docs", count_filter=models.Filter(should=[
        models.FieldCondition(key="city", match=models.MatchValue(value="Paris")),
        models.HasIdCondition(has_id=[3])])).count == 2
