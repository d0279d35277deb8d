"""Helpers for the tests that run a real cluster: a REST client bound to a `Cluster`, waits, digests, a writer.

The tests in tests/cluster/ that start real processes through `cluster.launcher.Cluster` (test_cluster_*,
test_transfer_*, test_priority_*, test_faults, events/test_cluster_events, ...) talk to them over real HTTP
through these helpers, and nothing else:
- `cluster_started` starts a `Cluster` and, when the block ends normally, asserts no process died unasked;
- `ClusterApi` calls any node (by name) or the coordinator and returns `(status, body)`; `transfer_operation`
  is the body of a replicate, move or abort;
- `replica_map`, `transfers_of` read the coordinator's state; `wait_replica_state`, `wait_streaming` and
  `wait_converged` wait on it; every replica Active is the pytest plugin's `wait_replicas_active`;
- `digests_of` gathers `/internal/digests` of every live node, `assert_converged` compares them per shard;
- `Writer` upserts batches through several nodes in the background and records which ids were acknowledged.
Points come from tests/helpers.py (`points_make`). Every call has a timeout, and every wait is
`node.retry.wait_until` with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from cluster.launcher import Cluster
from cluster.pytest_plugin import replicas_active
from node.protocol import replica_map
from node.retry import WaitTimeout, wait_until
from tests.helpers import points_make

Reply = tuple[int, Any]
CALL_TIMEOUT_S = 30.0
POLL_S = 0.1


@contextlib.asynccontextmanager
async def cluster_started(run_dir: Path, nodes: int = 3, **options: Any) -> AsyncIterator[Cluster]:
    """`async with Cluster(...)`: every process is stopped by PID when the block ends, also when it fails.

    When the block ends normally, no process may have died unasked (the end of its log is in the message).
    The launcher gives each process a port below the kernel's ephemeral range, so the fault proxy's links
    (bound on port 0) cannot take a node's port before the node binds it.
    """
    async with Cluster(nodes=nodes, run_dir=run_dir, **options) as cluster:
        yield cluster
        crashed = cluster.dead_processes()
    assert not crashed, "processes died during the test:\n" + "\n".join(crashed)


class ClusterApi:
    """REST calls to the nodes of one cluster (by name, e.g. "n1") and to its coordinator."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ClusterApi:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
                                             headers=self.cluster.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    def url(self, node: str) -> str:
        return self.cluster.coordinator_url if node == "coordinator" else self.cluster.node_url(node)

    async def call(self, node: str, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        assert self.session is not None
        async with self.session.request(method, self.url(node) + path, json=body, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text

    async def ok(self, node: str, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, reply = await self.call(node, method, path, body, **kwargs)
        assert status == 200, f"{method} {path} on {node}: HTTP {status} {reply}"
        return reply["result"] if isinstance(reply, dict) and "result" in reply else reply

    # -- collections and points ---------------------------------------------------------------------------
    async def collection_create(self, node: str, name: str, shard_number: int = 1, replication_factor: int = 2,
                                write_consistency_factor: int = 1, size: int = 4) -> None:
        await self.ok(node, "PUT", f"/collections/{name}", {
            "vectors": {"size": size, "distance": "Dot"}, "shard_number": shard_number,
            "replication_factor": replication_factor, "write_consistency_factor": write_consistency_factor})

    async def upsert(self, node: str, name: str, points: list[dict[str, Any]], **kwargs: Any) -> Reply:
        return await self.call(node, "PUT", f"/collections/{name}/points?wait=true", {"points": points}, **kwargs)

    async def upsert_ok(self, node: str, name: str, points: list[dict[str, Any]], batch: int = 1000) -> None:
        for start in range(0, len(points), batch):
            status, reply = await self.upsert(node, name, points[start:start + batch])
            assert status == 200, f"upsert through {node}: HTTP {status} {reply}"

    async def count(self, node: str, name: str) -> int:
        return int((await self.ok(node, "POST", f"/collections/{name}/points/count", {"exact": True}))["count"])

    async def retrieve_ids(self, node: str, name: str, ids: Sequence[int], batch: int = 2000) -> set[int]:
        """The ids among `ids` that `node` can read (the read goes to Active replicas)."""
        found: set[int] = set()
        for start in range(0, len(ids), batch):
            result = await self.ok(node, "POST", f"/collections/{name}/points", {
                "ids": list(ids[start:start + batch]), "with_payload": False, "with_vector": False})
            found |= {int(point["id"]) for point in result}
        return found

    async def cluster_info(self, node: str, name: str) -> dict[str, Any]:
        return dict(await self.ok(node, "GET", f"/collections/{name}/cluster"))

    async def cluster_operation(self, node: str, name: str, operation: dict[str, Any]) -> Reply:
        return await self.call(node, "POST", f"/collections/{name}/cluster", operation)

    # -- the coordinator's view ---------------------------------------------------------------------------
    async def state(self) -> dict[str, Any]:
        status, state = await self.call("coordinator", "GET", "/internal/state")
        assert status == 200, state
        return dict(state)

    async def settings_set(self, **settings: Any) -> None:
        await self.ok("coordinator", "PUT", "/internal/settings", settings)


def transfer_operation(key: str, source: int, target: int, shard: int = 0) -> dict[str, Any]:
    """The body of `POST /collections/{name}/cluster` for `replicate_shard`, `move_shard` or `abort_transfer`."""
    return {key: {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}}


def transfers_of(state: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in state["transfers"] if t["collection"] == name]


async def wait_replica_state(api: ClusterApi, name: str, shard: int, peer: int, wanted: str | None,
                             timeout_s: float = 20.0) -> None:
    """Wait until the replica of `shard` on `peer` is in state `wanted` (None: gone)."""
    async def reached() -> bool:
        return replica_map(await api.state(), name).get(shard, {}).get(peer) == wanted
    await wait_until(reached, timeout_s, POLL_S, what=f"shard {shard} of {name} on peer {peer} to be {wanted}")


async def wait_streaming(api: ClusterApi, name: str, shard: int = 0, timeout_s: float = 20.0) -> dict[str, Any]:
    """Wait until the coordinator holds a transfer of `shard` that has streamed some of its bytes, not all;
    returns that transfer as the coordinator has it."""
    async def streaming() -> dict[str, Any] | None:
        for transfer in transfers_of(await api.state(), name):
            if transfer["shard_id"] == shard and transfer["phase"] == "streaming" and \
                    0 < (transfer["bytes"] or 0) < (transfer["bytes_total"] or 0):
                return dict(transfer)
        return None
    found: dict[str, Any] | None = await wait_until(
        streaming, timeout_s, POLL_S, what=f"a snapshot stream of shard {shard} of {name} under way")
    assert found is not None
    return found


async def digests_of(api: ClusterApi, nodes: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """`{node: {collection: {shard: {points_count, seq, digest}}}}` from every live node's /internal/digests."""
    names = nodes or [n for n in api.cluster.node_names() if api.cluster.node_alive(n)]
    replies = await asyncio.gather(*(api.ok(n, "GET", "/internal/digests") for n in names))
    return dict(zip(names, replies, strict=True))


async def assert_converged(api: ClusterApi, name: str) -> dict[int, str]:
    """Every replica of every shard of `name` (per the coordinator) has the same digest; returns them."""
    replicas = replica_map(await api.state(), name)
    digests = await digests_of(api)
    agreed: dict[int, str] = {}
    for shard, peers in replicas.items():
        seen = {api.cluster.name_of(p): digests[api.cluster.name_of(p)].get(name, {}).get(str(shard), {})
                .get("digest") for p in peers}
        assert len(set(seen.values())) == 1 and None not in seen.values(), f"shard {shard} differs: {seen}"
        agreed[shard] = next(iter(seen.values()))  # type: ignore[assignment]
    return agreed


async def wait_converged(api: ClusterApi, name: str, replicas_per_shard: int | None = None,
                         timeout_s: float = 40.0) -> dict[int, str]:
    """All replicas Active, no transfers, equal digests per shard (`assert_converged`), within `timeout_s`."""
    seen: dict[str, Any] = {}

    async def converged() -> dict[int, str] | None:
        if await replicas_active(api.cluster, name, replicas_per_shard, session=api.session, seen=seen) is None:
            return None
        try:
            return await assert_converged(api, name)
        except AssertionError as error:
            seen["digests"] = str(error)
            return None
    try:
        digests: dict[int, str] | None = await wait_until(converged, timeout_s, 0.2, what=f"{name} converged")
    except WaitTimeout as error:
        raise WaitTimeout(f"{error}; last seen: {seen}") from None
    assert digests is not None
    return digests


class Writer:
    """Upserts batches of new ids through several nodes in the background, for the life of `async with`.

    `acked` holds the ids of batches answered 200 (they must never be lost), `refused` the ids of batches
    answered with an error status, `unknown` those whose call failed without an answer.
    """

    def __init__(self, api: ClusterApi, name: str, nodes: Sequence[str], start_id: int = 1_000_000,
                 batch_points: int = 20, size: int = 4, pause_s: float = 0.01) -> None:
        self.api, self.name, self.nodes = api, name, list(nodes)
        self.ids = itertools.count(start_id)
        self.batch_points, self.size, self.pause_s = batch_points, size, pause_s
        self.acked: list[int] = []
        self.refused: list[int] = []
        self.unknown: list[int] = []
        self.statuses: list[int] = []
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    async def __aenter__(self) -> Writer:
        self.task = asyncio.create_task(self._run(), name=f"writer {self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stopping.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 30.0)
            except TimeoutError:
                self.task.cancel()
                raise

    async def _run(self) -> None:
        for node in itertools.cycle(self.nodes):
            if self.stopping.is_set():
                return
            ids = [next(self.ids) for _ in range(self.batch_points)]
            try:
                status, _ = await self.api.upsert(node, self.name, points_make(ids, self.size, tag="w"))
            except (aiohttp.ClientError, TimeoutError, OSError):
                self.unknown += ids
                await asyncio.sleep(0.1)
                continue
            self.statuses.append(status)
            (self.acked if status == 200 else self.refused).extend(ids)
            await asyncio.sleep(self.pause_s)

    async def wait_acked(self, count: int, timeout_s: float = 20.0) -> None:
        await wait_until(lambda: len(self.acked) >= count, timeout_s, POLL_S,
                         what=f"the writer's acknowledged points to reach {count}")


# -- snapshots (priority tests) ---------------------------------------------------------------------------
async def shard_digest(api: ClusterApi, node: str, name: str, shard: int = 0) -> str:
    return str((await digests_of(api, [node]))[node][name][str(shard)]["digest"])


async def snapshot_download(api: ClusterApi, node: str, path: str) -> bytes:
    assert api.session is not None
    async with api.session.get(api.url(node) + path) as response:
        assert response.status == 200, f"download {path} from {node}: HTTP {response.status}"
        return await response.read()


async def snapshot_upload(api: ClusterApi, node: str, path: str, data: bytes, priority: str | None) -> Reply:
    """POST a snapshot file as the multipart field `snapshot` (priority as a query parameter)."""
    assert api.session is not None
    form = aiohttp.FormData()
    form.add_field("snapshot", data, filename="upload.snapshot", content_type="application/octet-stream")
    query = f"?wait=true&priority={priority}" if priority else "?wait=true"
    async with api.session.post(api.url(node) + path + query, data=form) as response:
        return response.status, await response.json(content_type=None)


def rules_of(events: list[dict[str, Any]], name: str) -> list[tuple[int, str | None, str]]:
    """`(peer, to, rule)` of every replica.state decision about collection `name`, in order."""
    return [(int(e["peer"]), e.get("to"), str(e["rule"])) for e in events
            if e.get("kind") == "replica.state" and e.get("collection") == name]
