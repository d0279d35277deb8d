"""Payload indexes on a standalone node (issue 18 item 4): `PUT /collections/{c}/index` records the field and
its schema, collection info lists it under `payload_schema` with how many points have a value there, as Qdrant
shows it; it survives a restart and travels in collection snapshots. No search changes (a scan needs none).

Reference: the module docstring of node/api/collections.py; a cluster shows the same on every node
(tests/cluster/test_cluster_routes.py).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess


async def test_an_index_counts_the_points_that_have_the_field(client: NodeClient) -> None:
    await client.collection_create("docs", shard_number=2)
    points = points_make(range(30))
    for point in points[:12]:
        point["payload"]["city"] = "Berlin"
    points[12]["payload"]["city"] = None  # null is not indexed
    await client.points_upsert("docs", points)
    assert (await client.ok("GET", "/collections/docs"))["payload_schema"] == {}
    assert await client.ok("PUT", "/collections/docs/index?wait=true",
                           {"field_name": "city", "field_schema": "keyword"}) == {
        "operation_id": 0, "status": "completed"}
    info = await client.ok("GET", "/collections/docs")
    assert info["payload_schema"] == {"city": {"data_type": "keyword", "points": 12}}
    assert "payload_schema" not in info["config"]["params"]
    await client.points_upsert("docs", [{**points[20], "payload": {**points[20]["payload"], "city": "Rome"}}])
    assert (await client.ok("GET", "/collections/docs"))["payload_schema"]["city"]["points"] == 13


async def test_indexes_survive_a_restart_and_travel_in_snapshots(node_factory: Callable[..., NodeProcess]) -> None:
    source = node_factory("source", peer_id=1)
    async with NodeClient(source.url) as client:
        await client.collection_create("docs")
        await client.points_upsert("docs", points_make(range(10)))
        await client.ok("PUT", "/collections/docs/index", {"field_name": "tag", "field_schema": {"type": "keyword",
                                                                                                 "is_tenant": True}})
        await client.ok("PUT", "/collections/docs/index", {"field_name": "i", "field_schema": "integer"})
        await client.ok("DELETE", "/collections/docs/index/i")
        snapshot = await client.ok("POST", "/collections/docs/snapshots")
        _, data, _ = await client.download(f"/collections/docs/snapshots/{snapshot['name']}")
    source.stop()
    source.start()
    expected = {"tag": {"data_type": "keyword", "params": {"type": "keyword", "is_tenant": True}, "points": 10}}
    async with NodeClient(source.url) as client:
        assert (await client.ok("GET", "/collections/docs"))["payload_schema"] == expected
    target = node_factory("target", peer_id=2)
    async with NodeClient(target.url) as client:
        status, reply = await client.upload("/collections/docs/snapshots/upload", data)
        assert status == 200, reply
        assert (await client.ok("GET", "/collections/docs"))["payload_schema"] == expected


async def test_a_body_qdrant_cannot_read_is_refused(client: NodeClient) -> None:
    await client.collection_create("docs")
    for body, message in [({"field_schema": "keyword"}, "Format error in JSON body: missing field `field_name`"),
                          ({"field_name": "city", "field_schema": "colour"},
                           "Format error in JSON body: field_schema: expected one of keyword, integer, float, geo, "
                           "text, bool, datetime, uuid (or an object with such a `type`)")]:
        status, reply = await client.call("PUT", "/collections/docs/index", body)
        assert (status, reply["status"]["error"]) == (400, message)
    status, reply = await client.call("PUT", "/collections/nothing/index", {"field_name": "a", "field_schema": "uuid"})
    assert (status, reply["status"]["error"]) == (404, "Not found: Collection `nothing` doesn't exist!")
