"""A battery of malformed and hostile requests against one standalone node (issue 14 item 6, second bullet).

Every route family gets its share: collections, points, each kind of snapshot (collection, shard, full),
uploads, recover locations, the internal routes, routes that do not exist. Each case asserts Qdrant's status
and message in Qdrant's envelope (downloads: the plain text actix gives), that the data did not change
(every shard's count and digest, /internal/digests) and that no file was written, removed or grown anywhere
under the scratch root, which holds the node's data and snapshots and is its working directory. A seeded run
of mutated upsert bodies follows (tests/torture/hostile.py).

Where each expectation comes from (Qdrant 1.19 and the crates it pins):
- JSON bodies: actix-web-validator 7's `Json` reads any content type (`JsonBody::new(.., ctype_required:
  false)`) up to `service.max_request_size_mb` (`src/actix/mod.rs`); Qdrant's handler answers 400
  `Format error in JSON body: <serde_json error>` with `time: 0.0`, and any other payload error 400 with
  actix's text (`JSON payload (N bytes) is larger than allowed (limit: L bytes).`); serde_json has no NaN or
  Infinity, refuses numbers beyond f64 and nests 128 levels at most (tests/node/test_jsonwire.py).
- Paths: a collection name is validated first (422); a route matched by no resource (a wrong method too:
  every route is registered with a method guard) is actix's default 404.
- Uploads: actix-multipart 0.8 `MultipartForm`: no Content-Type 400 `Could not find Content-Type header`,
  not multipart/form-data 415, no boundary (in the header or in the body) 400 `Multipart boundary is not
  found`.
- Snapshot names and locations: the rules of docs/node.md section 2 (Qdrant's words for file URIs).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgpack
import pytest

from node.protocol import msgpack_encode
from tests.helpers import points_make
from tests.node.client import NodeClient
from tests.processes import NodeProcess
from tests.torture.hostile import (
    JSON,
    MSGPACK,
    MUTATIONS,
    SEED,
    TIMEOUT,
    Case,
    Observation,
    files_sized,
    json_mutations,
    judge,
    multipart,
    nested,
    send,
    tar_of,
)

ROOT = Path(__file__).resolve().parents[2]
JSON_BYTES_MAX = 1 << 20  # the node runs with --max-request-bytes 1 MiB, so an oversized body stays cheap
UPSERT = "/collections/docs/points?wait=true"
VALID_UPSERT = b'{"points": [{"id": 7, "vector": [0.5, 1.5, 2.5, 3.5], "payload": {"k": "v", "n": [1, 2.5]}}]}'
FORM = {"Content-Type": "multipart/form-data; boundary=xyz"}


@dataclass(frozen=True)
class Target:
    node: NodeProcess
    root: Path
    collection_snapshot: str


def node_cases(snapshots_dir: Path, collection_snapshot: str) -> list[Case]:
    snapshot_file = f"file://{snapshots_dir}/docs/{collection_snapshot}"
    big = b'{"points": [], "pad": "' + b"x" * (JSON_BYTES_MAX + 10) + b'"}'
    fmt = "Format error in JSON body: "
    return [
        # -- collections ------------------------------------------------------------------------------
        Case("create-nan-size", "PUT", "/collections/other", 400, fmt + "expected value at line 1 column 22",
             b'{"vectors": {"size": NaN, "distance": "Dot"}}'),
        Case("create-deep", "PUT", "/collections/other", 400, fmt + "recursion limit exceeded at line 1 column 636",
             nested(50_000)),
        Case("create-oversized", "PUT", "/collections/other", 400,
             f"JSON payload ({len(big)} bytes) is larger than allowed (limit: {JSON_BYTES_MAX} bytes).", big),
        Case("create-array", "PUT", "/collections/other", 400, fmt + "expected a JSON object", b"[]"),
        Case("create-empty", "PUT", "/collections/other", 400, fmt + "EOF while parsing a value at line 1 column 0",
             b""),
        Case("create-slash-name", "PUT", "/collections/a%2Fb", 422,
             'Validation error in path parameters: [collection_name: collection name cannot contain "/" char]',
             b'{"vectors": {"size": 4, "distance": "Dot"}}'),
        Case("create-existing", "PUT", "/collections/docs", 409, "Wrong input: Collection `docs` already exists!",
             b'{"vectors": {"size": 4, "distance": "Dot"}}'),
        Case("update-infinite-threshold", "PATCH", "/collections/docs", 400, fmt + "expected value at line 1 column 45",
             b'{"optimizers_config": {"deleted_threshold": Infinity}}'),
        Case("get-nul-name", "GET", "/collections/a%00b", 422,
             'Validation error in path parameters: [collection_name: collection name cannot contain "\x00" char]'),
        Case("delete-all-collections", "DELETE", "/collections", 404, "Not found: no route for DELETE /collections"),
        Case("unknown-route", "GET", "/collections/docs/nothing/here", 404,
             "Not found: no route for GET /collections/docs/nothing/here"),
        Case("wrong-method", "PATCH", "/collections/docs/points", 404,
             "Not found: no route for PATCH /collections/docs/points"),
        # -- points -----------------------------------------------------------------------------------
        Case("upsert-nan-vector", "PUT", UPSERT, 400, fmt + "expected value at line 1 column 39",
             b'{"points": [{"id": 1, "vector": [0.5, NaN, 1, 2]}]}'),
        Case("upsert-infinite-vector", "PUT", UPSERT, 400, fmt + "expected value at line 1 column 45",
             b'{"points": [{"id": 1, "vector": [0.5, 1, 2, Infinity]}]}'),
        Case("upsert-nan-payload", "PUT", UPSERT, 400, fmt + "expected value at line 1 column 66",
             b'{"points": [{"id": 1, "vector": [0.5, 1, 2, 3], "payload": {"x": NaN}}]}'),
        Case("upsert-payload-out-of-range", "PUT", UPSERT, 400, fmt + "number out of range at line 1 column 71",
             b'{"points": [{"id": 1, "vector": [0.5, 1, 2, 3], "payload": {"x": -1e400}}]}'),
        Case("upsert-lone-surrogate", "PUT", UPSERT, 400,
             fmt + "lone leading surrogate in hex escape at line 1 column 67",
             b'{"points": [{"id": 1, "vector": [0.5, 1, 2, 3], "payload": {"\\udead": 1}}]}'),
        Case("upsert-invalid-utf8", "PUT", UPSERT, 400, fmt + "invalid unicode code point at line 1 column 69",
             b'{"points": [{"id": 1, "vector": [0.5, 1, 2, 3], "payload": {"k": "\xc3("}}]}'),
        Case("upsert-trailing", "PUT", UPSERT, 400, fmt + "trailing characters at line 1 column 49",
             b'{"points": [{"id": 1, "vector": [1, 2, 3, 4]}]} x'),
        Case("upsert-nan-as-text", "PUT", UPSERT, 400, fmt + "expected value at line 1 column 34",
             b'{"points": [{"id": 1, "vector": [NaN, 1, 2, 3]}]}', {"Content-Type": "text/plain"}),
        Case("upsert-bom", "PUT", UPSERT, 400, fmt + "expected value at line 1 column 1", b"\xef\xbb\xbf" + VALID_UPSERT),
        Case("upsert-oversized-chunked", "PUT", UPSERT, 400,
             f"JSON payload has exceeded limit ({JSON_BYTES_MAX} bytes).", big, {**JSON, "Transfer-Encoding": "chunked"}),
        Case("delete-nan-id", "POST", "/collections/docs/points/delete?wait=true", 400,
             fmt + "expected value at line 1 column 13", b'{"points": [NaN]}'),
        Case("search-nan-vector", "POST", "/collections/docs/points/search", 400,
             fmt + "expected value at line 1 column 13", b'{"vector": [NaN, 1, 2, 3], "limit": 3}'),
        Case("scroll-deep-filter", "POST", "/collections/docs/points/scroll", 400,
             fmt + "recursion limit exceeded at line 1 column 642",
             b'{"filter": ' + b'{"must": [' * 100 + b"{}" + b"]}" * 100 + b"}"),
        Case("count-control-char", "POST", "/collections/docs/points/count", 400,
             fmt + "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 13",
             b'{"filter": "\x07"}'),
        Case("upsert-wait-not-bool", "PUT", "/collections/docs/points?wait=maybe", 400,
             "Deserialize error in query parameters: wait: provided string was not `true` or `false`",
             VALID_UPSERT),
        # -- snapshots: names that climb out, kinds that do not exist ---------------------------------
        Case("download-traversal", "GET", "/collections/docs/snapshots/..%2F..%2Fnode.json", 404,
             "Not found: Snapshot ../../node.json not found", shape="plain"),
        Case("delete-traversal", "DELETE", "/collections/docs/snapshots/..%2F..%2Fnode.json", 404,
             "Not found: Snapshot ../../node.json not found"),
        Case("full-delete-traversal", "DELETE", "/snapshots/..%2Fdocs", 404, "Not found: Snapshot ../docs not found"),
        Case("full-download-dotdot", "GET", "/snapshots/%2E%2E", 404, "Not found: Snapshot .. not found",
             shape="plain"),
        Case("shard-delete-traversal", "DELETE", "/collections/docs/shards/0/snapshots/..%2F..%2F..%2Fn1.log", 404,
             "Not found: Snapshot ../../../n1.log not found"),
        Case("shard-snapshot-bad-shard", "POST", "/collections/docs/shards/abc/snapshots", 400,
             "Deserialize error in path parameters: shard: invalid digit found in string"),
        Case("shard-stream-missing-shard", "GET", "/collections/docs/shards/9/snapshot", 404,
             "Not found: shard 9 not found..."),
        # -- recover locations --------------------------------------------------------------------------
        Case("recover-etc-passwd", "PUT", "/collections/docs/snapshots/recover", 403,
             f'Forbidden: Snapshot file path must be inside the snapshots directory "{snapshots_dir}"',
             b'{"location": "file:///etc/passwd"}'),
        Case("recover-relative-host", "PUT", "/collections/docs/snapshots/recover", 400,
             "Bad request: Invalid snapshot URI, file path must be absolute or on localhost",
             b'{"location": "file://../../x.snapshot"}'),
        Case("recover-ftp", "PUT", "/collections/docs/snapshots/recover", 400,
             "Bad request: URL ftp://host/x.snapshot with scheme ftp is not supported",
             b'{"location": "ftp://host/x.snapshot"}'),
        Case("recover-nan-location", "PUT", "/collections/docs/snapshots/recover", 400,
             fmt + "expected value at line 1 column 14", b'{"location": NaN}'),
        Case("recover-short-checksum", "PUT", "/collections/docs/snapshots/recover", 422,
             "Validation error in JSON body: [checksum: Validation error: invalid_sha256_hash...",
             f'{{"location": "{snapshot_file}", "checksum": "abc"}}'.encode()),
        Case("recover-bogus-priority", "PUT", "/collections/docs/snapshots/recover", 400,
             fmt + "unknown variant `bogus`...", f'{{"location": "{snapshot_file}", "priority": "bogus"}}'.encode()),
        Case("shard-recover-file-scheme", "PUT", "/collections/docs/shards/0/snapshots/recover", 400,
             f"Wrong input: Invalid snapshot URL {snapshot_file}: URLs with file scheme are not supported",
             f'{{"location": "{snapshot_file}"}}'.encode()),
        # -- uploads --------------------------------------------------------------------------------------
        Case("upload-no-content-type", "POST", "/collections/docs/snapshots/upload", 400,
             "Could not find Content-Type header", b"x", {}),
        Case("upload-text-plain", "POST", "/collections/docs/snapshots/upload", 415,
             "Parsed Content-Type did not have 'multipart' top-level media type", b"x", {"Content-Type": "text/plain"}),
        Case("upload-no-boundary", "POST", "/collections/docs/snapshots/upload", 400,
             "Multipart boundary is not found", b"--x\r\n", {"Content-Type": "multipart/form-data"}),
        Case("upload-mixed", "POST", "/collections/docs/snapshots/upload", 415,
             "Parsed Content-Type did not have 'multipart' top-level media type", b"x",
             {"Content-Type": "multipart/mixed; boundary=xyz"}),
        Case("upload-body-without-boundary", "POST", "/collections/docs/snapshots/upload", 400,
             "Multipart boundary is not found", b"no boundary in here", FORM),
        Case("upload-without-snapshot-field", "POST", "/collections/docs/snapshots/upload", 400, "Bad request: ...",
             multipart("xyz", "other", b"abc"), FORM),
        Case("upload-garbage-archive", "POST", "/collections/docs/snapshots/upload", 400, "Wrong input: Invalid snapshot: no manifest.json (not a shardsim snapshot)",
             multipart("xyz", "snapshot", b"\x00" * 3000), FORM),
        Case("upload-tar-slip", "POST", "/collections/docs/shards/0/snapshots/upload", 400, "Wrong input: Invalid snapshot: unsafe path '../../slip' in archive",
             multipart("xyz", "snapshot", tar_of([("manifest.json", b"{}"), ("../../slip", b"x")])), FORM),
        Case("shard-upload-missing-shard", "POST", "/collections/docs/shards/9/snapshots/upload", 404,
             "Not found: shard 9 not found...", multipart("xyz", "snapshot", b"x"), FORM),
        Case("shard-upload-bad-checksum", "POST", "/collections/docs/shards/0/snapshots/upload?checksum=zz", 422,
             "Validation error in query parameters: [checksum: Validation error: invalid_sha256_hash...",
             multipart("xyz", "snapshot", b"x"), FORM),
        # -- internal routes ------------------------------------------------------------------------------
        Case("internal-digest-bad-shard", "GET", "/internal/collections/docs/shards/x/digest", 400,
             "Deserialize error in path parameters: shard: invalid digit found in string"),
        Case("internal-read-not-msgpack", "POST", "/internal/collections/docs/shards/0/read", 400,
             "Format error in msgpack body: ...", b"\xc1\xc1", MSGPACK),
        Case("internal-read-array", "POST", "/internal/collections/docs/shards/0/read", 400,
             "Bad request: Malformed read request: expected an object", msgpack_encode([1, 2]), MSGPACK),
        Case("internal-read-missing-ids", "POST", "/internal/collections/docs/shards/0/read", 400,
             "Bad request: Malformed read request: KeyError: 'ids'", msgpack_encode({"kind": "retrieve"}), MSGPACK),
        Case("internal-apply-not-a-map", "POST", "/internal/collections/docs/shards/0/apply", 400,
             "Bad request: Malformed apply request: expected an object", msgpack.packb([1, 2, 3]), MSGPACK),
        Case("internal-apply-bogus-op", "POST", "/internal/collections/docs/shards/0/apply", 400,
             "Wrong input: Malformed shard operation: unknown kind 'bogus-op', expected one of ...",
             msgpack.packb({"ops": [["bogus-op", 1, []]], "durable": True}), MSGPACK),
        Case("internal-state-standalone", "POST", "/internal/cluster/state", 405,
             "Qdrant is running in standalone mode", b'{"version": NaN}'),
    ]


CASE_NAMES = [case.name for case in node_cases(Path("/s"), "x.snapshot")]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One standalone node for the module, its working directory the scratch root, with data to protect."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        node = NodeProcess(root / "n1", peer_id=1, extra_args=["--max-request-bytes", str(JSON_BYTES_MAX)]).start()
    try:
        yield Target(node, root, asyncio.run(node_setup(node.url)))
    finally:
        node.stop()


async def node_setup(url: str) -> str:
    """A collection of 2 shards with 200 points and one snapshot of each kind; the collection snapshot's name."""
    async with NodeClient(url) as client:
        await client.collection_create("docs", shard_number=2)
        await client.points_upsert("docs", points_make(range(200)))
        created = await client.ok("POST", "/collections/docs/snapshots")
        await client.ok("POST", "/collections/docs/shards/0/snapshots")
        await client.ok("POST", "/snapshots")
        return str(created["name"])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as opened:
        yield opened


async def observe(session: aiohttp.ClientSession, target: Target) -> Observation:
    async with session.get(f"{target.node.url}/internal/digests") as response:
        assert response.status == 200
        digests = (await response.json())["result"]
    assert sum(info["points_count"] for info in digests["docs"].values()) == 200
    return Observation(digests, files_sized(target.root))


async def sent_and_judged(session: aiohttp.ClientSession, target: Target, case: Case) -> None:
    before = await observe(session, target)
    judge(case, *await send(session, target.node.url, case))
    after = await observe(session, target)
    assert after.digests == before.digests, f"{case.name} changed the data"
    assert after.files == before.files, f"{case.name} touched files: {set(after.files.items()) ^ set(before.files.items())}"


@pytest.mark.parametrize("name", CASE_NAMES)
async def test_hostile_request_is_refused_and_changes_nothing(session: aiohttp.ClientSession, target: Target,
                                                              name: str) -> None:
    cases = {case.name: case for case in node_cases(target.node.data_dir / "snapshots", target.collection_snapshot)}
    await sent_and_judged(session, target, cases[name])


async def test_seeded_mutations_of_an_upsert_are_refused_with_serdes_words(session: aiohttp.ClientSession,
                                                                           target: Target) -> None:
    for index, body in enumerate(json_mutations(VALID_UPSERT, MUTATIONS, SEED)):
        case = Case(f"mutation {index} (seed {SEED}): {body[:80]!r}", "PUT", UPSERT, 400,
                    "Format error in JSON body: ...", body)
        await sent_and_judged(session, target, case)


def test_the_battery_is_large_enough() -> None:
    assert len(CASE_NAMES) >= 50 and len(set(CASE_NAMES)) == len(CASE_NAMES)
