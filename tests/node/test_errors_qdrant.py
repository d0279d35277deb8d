"""Statuses and messages as Qdrant gives them, for the cases where a Qdrant client or test looks at them.

- Deleting a collection that does not exist is no error: 200 `"result": false`.
- A `file://` recovery location is checked in Qdrant's order: the host (400), that the file exists (400,
  the path quoted as Rust quotes it), then that it lies inside the snapshots directory (403). A shard
  refuses every URL scheme but http(s) (400).
- Validation errors are 422 `Validation error in <where>: [field: message]` with `time: 0.0`, the
  message built from the validator's rule (`invalid_sha256_hash`, `range`, `length`...); a value that does
  not even deserialize is 400 `Format error in JSON body: ...` / `Deserialize error in ...`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess

RECOVER = "/collections/{}/snapshots/recover"
SHARD_RECOVER = "/collections/docs/shards/0/snapshots/recover"
VECTORS = {"size": 4, "distance": "Dot"}


def error_of(reply: dict) -> str:
    return str(reply["status"]["error"])


async def test_deleting_a_missing_collection_answers_false(client: NodeClient) -> None:
    assert await client.ok("DELETE", "/collections/nothing") is False
    await client.collection_create("docs")
    assert await client.ok("DELETE", "/collections/docs") is True
    assert await client.ok("DELETE", "/collections/docs") is False
    assert not (await client.ok("GET", "/collections/docs/exists"))["exists"]


@pytest.mark.parametrize("location", ["file://whatever.snapshot", "file://./etc/passwd",
                                      "file://example.com/etc/passwd"])
async def test_file_uri_with_a_host_is_400(client: NodeClient, location: str) -> None:
    status, reply = await client.call("PUT", RECOVER.format("anything"), {"location": location})
    assert status == 400
    assert error_of(reply) == "Bad request: Invalid snapshot URI, file path must be absolute or on localhost"


@pytest.mark.parametrize("location", ["file:///whatever.snapshot", "file://localhost/whatever.snapshot",
                                      "file:///tmp/../whatever.snapshot", "file:///what%65ver.snapshot"])
async def test_missing_file_is_400_before_the_directory_is_checked(client: NodeClient, location: str) -> None:
    status, reply = await client.call("PUT", RECOVER.format("anything"), {"location": location})
    assert status == 400
    assert error_of(reply) == 'Bad request: Snapshot file "/whatever.snapshot" does not exist'
    assert not (await client.ok("GET", "/collections/anything/exists"))["exists"]


async def test_file_outside_the_snapshots_directory_is_403(client: NodeClient, node: NodeProcess,
                                                           tmp_path: Path) -> None:
    root = (node.data_dir / "snapshots").resolve()
    expected = f'Forbidden: Snapshot file path must be inside the snapshots directory "{root}"'
    outside = tmp_path / "outside.snapshot"
    outside.write_bytes(b"not a snapshot")
    link = node.data_dir / "snapshots" / "link.snapshot"
    link.symlink_to(outside)
    for location in ("file:///etc/passwd", outside.as_uri(), link.as_uri(),
                     f"file://localhost{root}/../../outside.snapshot"):
        status, reply = await client.call("PUT", RECOVER.format("anything"), {"location": location})
        assert (status, error_of(reply)) == (403, expected), location
    assert not (await client.ok("GET", "/collections/anything/exists"))["exists"]


async def test_other_locations_of_a_collection_recovery(client: NodeClient) -> None:
    status, reply = await client.call("PUT", RECOVER.format("anything"), {"location": "ftp://host/x.snapshot"})
    assert (status, error_of(reply)) == (400, "Bad request: URL ftp://host/x.snapshot with scheme ftp is not "
                                              "supported")
    status, reply = await client.call("PUT", RECOVER.format("anything"), {"location": "x.snapshot"})
    assert status == 400 and error_of(reply).startswith("Format error in JSON body: relative URL without a base")


@pytest.mark.parametrize("location", ["file:///whatever.snapshot", "ftp://host/x.snapshot"])
async def test_shard_recovery_refuses_urls_other_than_http(client: NodeClient, location: str) -> None:
    await client.collection_create("docs")
    status, reply = await client.call("PUT", SHARD_RECOVER, {"location": location})
    scheme = location.split(":")[0]
    assert status == 400
    assert error_of(reply) == (f"Wrong input: Invalid snapshot URL {location}: URLs with {scheme} scheme are not "
                               f"supported")


async def test_malformed_checksum_is_a_validation_error(client: NodeClient) -> None:
    """Checked from the query before the collection, the shard or the upload are looked at."""
    upload = "/collections/nothing/shards/0/snapshots/upload"
    status, reply = await client.upload(upload, b"not a snapshot", params={"checksum": "abc"})
    assert status == 422 and reply["time"] == 0.0
    assert error_of(reply) == ('Validation error in query parameters: [checksum: Validation error: '
                               'invalid_sha256_hash [{"length": Number(3), "expected_length": Number(64), '
                               '"value": String("abc")}]]')
    status, reply = await client.upload(upload, b"x", params={"checksum": "g" * 64})
    assert (status, error_of(reply)) == (422, "Validation error in query parameters: [checksum: invalid "
                                              "characters, expected 0-9, a-f, A-F]")
    await client.collection_create("docs")
    status, reply = await client.call("PUT", SHARD_RECOVER, {"location": "x.snapshot", "checksum": "0" * 63})
    assert status == 422 and error_of(reply).startswith("Validation error in JSON body: [checksum: Validation "
                                                        "error: invalid_sha256_hash [")
    status, reply = await client.call("PUT", RECOVER.format("docs"), {"location": "file:///x", "checksum": 5})
    assert status == 400 and error_of(reply).startswith("Format error in JSON body: invalid type: integer `5`")


async def test_collection_name_rules(client: NodeClient) -> None:
    long_name = "n" * 256
    status, reply = await client.call("GET", f"/collections/{long_name}/points/1")
    assert (status, reply["time"]) == (422, 0.0)
    assert error_of(reply) == (f'Validation error in path parameters: [collection_name: value "{long_name}" '
                               f'invalid, must be from 1 to 255 characters]')
    status, reply = await client.call("PUT", "/collections/a*b", {"vectors": VECTORS})
    assert (status, error_of(reply)) == (422, 'Validation error in path parameters: [collection_name: collection '
                                              'name cannot contain "*" char]')
    status, reply = await client.call("GET", "/collections/a*b")  # other routes are lenient: just unknown
    assert status == 404
    status, reply = await client.call("GET", "/collections/a%2Fb")
    assert (status, error_of(reply)) == (422, 'Validation error in path parameters: [collection_name: collection '
                                              'name cannot contain "/" char]')
    quoted = "my%20docs%20(2)"  # Qdrant's names may hold any character a file name can
    assert await client.ok("PUT", f"/collections/{quoted}", {"vectors": VECTORS}) is True
    await client.points_upsert(quoted, points_make(range(3)))
    assert await client.count(quoted) == 3
    assert {"name": "my docs (2)"} in (await client.ok("GET", "/collections"))["collections"]


@pytest.mark.parametrize("field", ["shard_number", "replication_factor", "write_consistency_factor"])
async def test_collection_counts_below_one(client: NodeClient, field: str) -> None:
    status, reply = await client.call("PUT", "/collections/docs", {"vectors": VECTORS, field: 0})
    assert (status, error_of(reply)) == (422, f"Validation error in JSON body: [{field}: value 0 invalid, must be "
                                              f"1 or larger]")
    status, reply = await client.call("PUT", "/collections/docs", {"vectors": VECTORS, field: -1})
    assert (status, error_of(reply)) == (400, "Format error in JSON body: invalid value: integer `-1`, expected "
                                              "u32")
    assert not (await client.ok("GET", "/collections/docs/exists"))["exists"]


async def test_collection_body_rules(client: NodeClient) -> None:
    body = {"vectors": {"size": 70000, "distance": "Dot", "hnsw_config": {"ef_construct": 2}},
            "hnsw_config": {"ef_construct": 0, "full_scan_threshold": 10}, "wal_config": {"wal_capacity_mb": 0},
            "optimizers_config": {"deleted_threshold": 1.5, "vacuum_min_vector_number": 100}}
    status, reply = await client.call("PUT", "/collections/docs", body)
    assert status == 422
    assert error_of(reply) == ("Validation error in JSON body: [vectors.size: value 70000 invalid, must be from 1 "
                               "to 65536; vectors.hnsw_config.ef_construct: value 2 invalid, must be 4 or larger; "
                               "hnsw_config.ef_construct: value 0 invalid, must be 4 or larger; "
                               "wal_config.wal_capacity_mb: value 0 invalid, must be 1 or larger; "
                               "optimizers_config.deleted_threshold: value 1.5 invalid, must be from 0.0 to 1.0]")
    status, reply = await client.call("PUT", "/collections/docs", {"vectors": {"size": 0, "distance": "Dot"}})
    assert status == 400 and error_of(reply).startswith("Format error in JSON body: data did not match any variant")
    status, reply = await client.call("PUT", "/collections/docs", {"vectors": VECTORS}, params={"timeout": "0"})
    assert (status, error_of(reply)) == (422, "Validation error in query parameters: [timeout: value 0 invalid, "
                                              "must be 1 or larger]")
    assert not (await client.ok("GET", "/collections/docs/exists"))["exists"]
    await client.collection_create("docs")
    status, reply = await client.call("PATCH", "/collections/docs", {"optimizers_config": {"max_segment_size": 0}})
    assert (status, error_of(reply)) == (422, "Validation error in JSON body: [optimizers_config.max_segment_size: "
                                              "value 0 invalid, must be 1 or larger]")


@pytest.mark.parametrize("method, path", [("POST", "/cluster/recover"), ("DELETE", "/cluster/peer/1"),
                                          ("POST", "/collections/nothing/cluster")])
async def test_cluster_operations_on_a_standalone_node_are_405(client: NodeClient, method: str, path: str) -> None:
    body = {"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}} if "collections" in path else None
    status, reply = await client.call(method, path, body)
    assert (status, error_of(reply)) == (405, "Qdrant is running in standalone mode")
