"""Helpers for the cluster and transfer tests: a REST client bound to a `Cluster`, waits, digests, a writer.

The tests in tests/cluster/test_cluster_*.py, test_transfer_*.py and test_priority_*.py start real processes
through `cluster.launcher.Cluster` and talk to them over real HTTP. These helpers keep them short:
- `ClusterApi` calls any node (by name) or the coordinator and returns `(status, body)`;
- `replica_map`, `wait_replicas_active`, `wait_replica_state`, `wait_converged` read the coordinator's state;
- `digests_of` gathers `/internal/digests` of every live node, `assert_converged` compares them per shard;
- `Writer` upserts batches through several nodes in the background and records which ids were acknowledged.
Every call has a timeout and every wait a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from cluster.launcher import Cluster
from cluster.launcher.processes import ProcessFailed
from node.protocol import replica_map

Reply = tuple[int, Any]
CALL_TIMEOUT_S = 30.0
START_ATTEMPTS = 3


@contextlib.asynccontextmanager
async def cluster_running(run_dir: Path, nodes: int = 3, **options: Any) -> AsyncIterator[Cluster]:
    """`async with Cluster(...)`, started again (at most 3 times) when a node lost its port to a proxy.

    The launcher chooses node ports (bind 0, close) before the fault proxy binds its links on port 0, so a
    link can take a node's port; that start fails with "address already in use" and is simply retried.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        cluster = Cluster(nodes=nodes, run_dir=run_dir / f"start{attempt}", **options)
        try:
            await cluster.__aenter__()
        except ProcessFailed as error:
            if "address already in use" in str(error) and attempt < START_ATTEMPTS:
                continue
            raise
        try:
            yield cluster
        finally:
            await cluster.__aexit__(None, None, None)
        return


class ClusterApi:
    """REST calls to the nodes of one cluster (by name, e.g. "n1") and to its coordinator."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ClusterApi:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S))
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

    async def upsert(self, node: str, name: str, points: list[dict[str, Any]]) -> Reply:
        return await self.call(node, "PUT", f"/collections/{name}/points?wait=true", {"points": points})

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


def points_make(ids: Sequence[int] | range, size: int = 4, tag: str = "a", seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": i, "vector": [round(rng.random(), 4) for _ in range(size)], "payload": {"i": i, "tag": tag}}
            for i in ids]


async def wait_true(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true after {timeout_s} s: {what}")


def transfers_of(state: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in state["transfers"] if t["collection"] == name]


async def wait_replicas_active(api: ClusterApi, name: str, replicas_per_shard: int | None = None,
                               timeout_s: float = 30.0) -> dict[int, dict[int, str]]:
    """Wait until no transfer of `name` runs and every replica is Active (optionally this many per shard)."""
    last: dict[str, Any] = {}

    async def settled() -> bool:
        state = await api.state()
        last["map"], last["transfers"] = replica_map(state, name), transfers_of(state, name)
        if last["transfers"] or not last["map"]:
            return False
        return all(st == "Active" for peers in last["map"].values() for st in peers.values()) and (
            replicas_per_shard is None or all(len(p) == replicas_per_shard for p in last["map"].values()))
    try:
        await wait_true(settled, timeout_s, f"replicas of {name} all Active")
    except AssertionError as error:
        raise AssertionError(f"{error}; last map {last.get('map')}, transfers {last.get('transfers')}") from None
    return dict(last["map"])


async def wait_replica_state(api: ClusterApi, name: str, shard: int, peer: int, wanted: str | None,
                             timeout_s: float = 20.0) -> None:
    """Wait until the replica of `shard` on `peer` is in state `wanted` (None: gone)."""
    async def reached() -> bool:
        return replica_map(await api.state(), name).get(shard, {}).get(peer) == wanted
    await wait_true(reached, timeout_s, f"shard {shard} of {name} on peer {peer} is {wanted}")


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
    """All replicas Active, no transfers, equal digests per shard (retried until the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        await wait_replicas_active(api, name, replicas_per_shard, max(deadline - loop.time(), 1.0))
        try:
            return await assert_converged(api, name)
        except AssertionError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)


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
        async def enough() -> bool:
            return len(self.acked) >= count
        await wait_true(enough, timeout_s, f"writer acknowledged {count} points")


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
