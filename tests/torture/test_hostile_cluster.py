"""Hostile requests against a cluster: the coordinator's API, a clustered node's internal routes, the fault
proxy's Toxiproxy API (issue 14 item 6, second bullet; the node's public routes are test_hostile_node.py).

One 2-node cluster serves the module (launched with its working directory the scratch root). Each case
asserts its status and its envelope (the coordinator's `{"status": {"error"}, "kind"}`, Qdrant's on the
nodes, Toxiproxy's `{"error", "status"}` on the proxy), and that nothing changed: every node's shard digests,
the coordinator's state (version, collections, transfers, settings), the proxy's proxies and toxics, and
the size of every file under the root (logs aside).

Where the expectations come from: the coordinator and the internal routes are shardsim's own API
(cluster/coordinator/server.py, node/api/internal.py): every malformed body is a 400 before anything
changes, in the words of node/jsonwire.py for JSON that serde_json would refuse. The proxy speaks
Toxiproxy 2.12: a body its Go decoder refuses is 400 `bad request body: <encoding/json's error>` (no NaN or
Infinity in Go's JSON; `exceeded max depth` for deep nesting), an unknown proxy 404 `proxy not found`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster.launcher import Cluster
from node.protocol import msgpack_encode
from tests.cluster.helpers import ClusterApi, cluster_started
from tests.helpers import points_make
from tests.torture.hostile import MSGPACK, TIMEOUT, Case, files_sized, judge, nested, send

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
ROOT = Path(__file__).resolve().parents[2]
LINK = "n1->n2"
FMT = "Format error in JSON body: "


def coordinator(name: str, method: str, path: str, status: int, text: str, body: bytes | None = None) -> Case:
    return Case(name, method, path, status, text, body, shape="coordinator", target="coordinator")


def internal(name: str, method: str, path: str, status: int, text: str, body: bytes | None = None,
             msgpack: bool = False) -> Case:
    headers = MSGPACK if msgpack else {"Content-Type": "application/json"}
    return Case(name, method, path, status, text, body, headers, target="n1")


def proxy(name: str, method: str, path: str, status: int, text: str, body: bytes | None = None) -> Case:
    return Case(name, method, path, status, text, body, shape="proxy", target="proxy")


CASES = [
    # -- the coordinator ------------------------------------------------------------------------------------
    coordinator("state-peer-not-a-number", "GET", "/internal/state?peer_id=abc", 400,
                "Bad request: ValueError: invalid literal for int() with base 10: 'abc'"),
    coordinator("settings-nan", "PUT", "/internal/settings", 400, FMT + "expected value at line 1 column 30",
                b'{"incoming_transfers_limit": NaN}'),
    coordinator("settings-deep", "PUT", "/internal/settings", 400,
                FMT + "recursion limit exceeded at line 1 column 636", nested(50_000)),
    coordinator("settings-array", "PUT", "/internal/settings", 400, FMT + "expected a JSON object", b"[]"),
    coordinator("settings-unknown", "PUT", "/internal/settings", 400, "Bad request: unknown setting `shard_number`...",
                b'{"shard_number": 9}'),
    coordinator("settings-wrong-type", "PUT", "/internal/settings", 400,
                'Bad request: invalid value for setting `incoming_transfers_limit`: "lots"',
                b'{"incoming_transfers_limit": "lots"}'),
    coordinator("settings-bad-priority", "PUT", "/internal/settings", 400,
                'Bad request: invalid value for setting `default_priority`: "bogus"', b'{"default_priority": "bogus"}'),
    coordinator("collection-nan-config", "POST", "/internal/collections/x", 400,
                FMT + "expected value at line 1 column 12", b'{"config": NaN}'),
    coordinator("collection-no-config", "POST", "/internal/collections/x", 400, "Bad request: KeyError: 'config'",
                b"{}"),
    coordinator("cluster-op-unknown", "POST", "/internal/collections/c/cluster", 400,
                FMT + "unknown cluster operation ['explode']...", b'{"explode": 1}'),
    coordinator("transfer-step-empty", "POST", "/internal/transfers/progress", 400, "Bad request: KeyError...", b"{}"),
    coordinator("recovery-no-peer", "POST", "/internal/recovery/begin", 400, "Bad request: KeyError: 'peer'",
                b'{"collection": "c"}'),
    coordinator("replica-failed-bad-shard", "POST", "/internal/replicas/failed", 400, "Bad request: ValueError...",
                b'{"collection": "c", "shard": "x", "peer": 1}'),
    coordinator("peer-register-bad-id", "POST", "/internal/peers", 400, "Bad request: ValueError...",
                b'{"peer_id": "abc", "name": "x", "address": "y"}'),
    coordinator("topology-peers-not-a-list", "PUT", "/internal/topology", 400, "Bad request: TypeError...",
                b'{"peers": "x"}'),
    coordinator("unknown-route", "GET", "/nowhere", 404, "Not found: no route for GET /nowhere"),
    coordinator("wrong-method", "DELETE", "/internal/state", 405,
                "Bad request: no route for DELETE /internal/state"),
    # -- a clustered node's internal routes -----------------------------------------------------------------
    internal("state-push-array", "POST", "/internal/cluster/state", 400,
             "Bad request: Malformed cluster state: expected an object", b"[]"),
    internal("state-push-version-text", "POST", "/internal/cluster/state", 400,
             "Bad request: Malformed cluster state: `version` missing or of the wrong type",
             b'{"version": "99", "peers": {}, "collections": {}, "transfers": []}'),
    internal("state-push-drops-collections", "POST", "/internal/cluster/state", 400,
             "Bad request: Malformed cluster state of collection c: expected an object",
             b'{"version": 99999, "peers": {}, "collections": {"c": 1}, "transfers": []}'),
    internal("state-push-nan", "POST", "/internal/cluster/state", 400, FMT + "expected value at line 1 column 13",
             b'{"version": NaN}'),
    internal("transfer-start-empty", "POST", "/internal/transfers/start", 400,
             "Bad request: Malformed transfer: `collection` missing or of the wrong type", b"{}"),
    internal("transfer-recover-garbage", "POST", "/internal/transfers/recover", 400,
             "Format error in msgpack body: ...", b"\xc1", msgpack=True),
    internal("transfer-recover-no-shard", "POST", "/internal/transfers/recover", 400,
             "Bad request: Malformed transfer recovery request: `shard` missing or of the wrong type",
             msgpack_encode({"collection": "c"}), msgpack=True),
    internal("read-scroll-no-limit", "POST", "/internal/collections/c/shards/0/read", 400,
             "Bad request: Malformed read request: KeyError: 'limit'", msgpack_encode({"kind": "scroll"}), msgpack=True),
    internal("digest-unknown-collection", "GET", "/internal/collections/nope/shards/0/digest", 404,
             "Not found: Collection `nope` doesn't exist!"),
    # -- the fault proxy's Toxiproxy API --------------------------------------------------------------------
    proxy("proxy-create-nan", "POST", "/proxies", 400,
          "bad request body: invalid character 'N' looking for beginning of value", b"NaN"),
    proxy("proxy-create-minus-infinity", "POST", "/proxies", 400,
          "bad request body: invalid character 'I' in numeric literal", b'{"name": -Infinity}'),
    proxy("proxy-create-deep", "POST", "/proxies", 400, "bad request body: exceeded max depth",
          b"[" * 50_000 + b"]" * 50_000),
    proxy("toxic-latency-out-of-range", "POST", f"/proxies/{LINK}/toxics", 400,
          "bad request body: json: cannot unmarshal number 1e400 into Go value of type float64",
          b'{"type": "latency", "attributes": {"latency": 1e400}}'),
    proxy("toxic-unknown-type", "POST", f"/proxies/{LINK}/toxics", 400, "invalid toxic type",
          b'{"type": "explode"}'),
    proxy("toxic-on-unknown-proxy", "POST", "/proxies/nope/toxics", 404, "proxy not found", b'{"type": "latency"}'),
    proxy("proxy-update-array", "POST", f"/proxies/{LINK}", 400, "bad request body...", b"[1]"),
    proxy("proxy-unknown-route", "GET", "/nowhere", 404, "not found"),
]


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    api: ClusterApi
    root: Path

    def url(self, target: str) -> str:
        if target == "proxy":
            return str(self.cluster.toxiproxy_url).rstrip("/")
        return self.cluster.coordinator_url if target == "coordinator" else self.cluster.node_url(target)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    root = tmp_path_factory.mktemp("hostile-cluster")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        async with cluster_started(root / "run", nodes=2) as cluster, ClusterApi(cluster) as api:
            await api.collection_create("n1", "c", shard_number=2, replication_factor=2)
            await api.upsert_ok("n1", "c", points_make(range(100)))
            yield Target(cluster, api, root)


async def observe(session: aiohttp.ClientSession, target: Target) -> dict[str, Any]:
    state = await target.api.state()
    async with session.get(f"{target.url('proxy')}/proxies") as response:
        proxies = await response.json()
    digests = {name: await target.api.ok(name, "GET", "/internal/digests") for name in ("n1", "n2")}
    assert all(sum(s["points_count"] for s in d["c"].values()) == 100 for d in digests.values()), digests
    return {"state": {k: state[k] for k in ("version", "collections", "transfers", "settings")},
            "proxies": proxies, "digests": digests, "files": files_sized(target.root)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_request_is_refused_and_changes_nothing(target: Target, case: Case) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT, headers=target.cluster.headers) as session:
        before = await observe(session, target)
        judge(case, *await send(session, target.url(case.target), case))
        after = await observe(session, target)
    for part in before:
        assert after[part] == before[part], f"{case.name} changed the {part}"
