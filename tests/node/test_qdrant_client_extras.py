"""More of qdrant-client's calls work unmodified: payload indexes, aliases, query batches, set_payload,
filtered count and delete."""

from qdrant_client import QdrantClient, models

from tests.processes import NodeProcess


def test_client_extras(node: NodeProcess) -> None:
    client = QdrantClient(url=node.url, prefer_grpc=False, timeout=10, check_compatibility=False)
    client.create_collection("x", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             shard_number=2)
    client.upsert("x", points=[models.PointStruct(id=i, vector=[i, 1, 2, 3], payload={"k": i % 3})
                               for i in range(12)])
    assert client.create_payload_index("x", "k", models.PayloadSchemaType.INTEGER).status == "completed"
    assert client.get_aliases().aliases == [] and client.get_collection_aliases("x").aliases == []
    only_one = models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value=1))])
    assert client.count("x", count_filter=only_one).count == 4
    client.set_payload("x", payload={"z": 1}, points=[1, 2])
    assert client.retrieve("x", ids=[1])[0].payload == {"k": 1, "z": 1}
    batch = client.query_batch_points("x", requests=[models.QueryRequest(query=[1, 0, 0, 0], limit=2),
                                                     models.QueryRequest(query=[0, 1, 0, 0], limit=3)])
    assert [len(r.points) for r in batch] == [2, 3]
    assert [p.id for p in batch[0].points] == [11, 10]
    client.delete("x", points_selector=models.FilterSelector(filter=only_one))
    assert client.count("x").count == 8
    client.close()
