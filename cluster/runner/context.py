"""What a scenario's plan gets: the cluster, the nemesis, a recording client, the seeded RNG, and helpers.

Every random choice of a plan comes from `ctx.rng` (one `random.Random(seed)`), so a seed replays the same
plan. Background writers are owned by the context's TaskGroup and stopped when their block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cluster.history import HistoryWriter
from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from cluster.runner.client import Outcome, WorkloadClient
from cluster.runner.events import Event, EventPump, Predicate
from cluster.runner.scenario import Scenario
from node import clock
from node.protocol import ReplicaState, cluster_info_replicas
from node.retry import WaitTimeout, wait_until


class ScenarioError(Exception):
    """The plan could not do what it set out to do (a setup call failed, a wait timed out)."""


@dataclass
class WriterStats:
    acknowledged_ids: list[int] = field(default_factory=list)
    operations: int = 0


@dataclass
class RunContext:
    scenario: Scenario
    seed: int
    cluster: Cluster
    nemesis: Nemesis
    client: WorkloadClient
    history: HistoryWriter
    pump: EventPump
    session: aiohttp.ClientSession
    run_dir: Path
    log: Callable[[str], None]
    rng: random.Random = field(default_factory=lambda: random.Random(clock.rng().getrandbits(64)))
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    processes: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- addresses ----------------------------------------------------------------------------------------
    def node_url(self, name: str) -> str:
        return self.cluster.node_url(name)

    def peer_id(self, name: str) -> int:
        return self.cluster.peer_id(name)

    def name_of(self, peer_id: int) -> str:
        return self.cluster.name_of(peer_id)

    def random_node(self, among: list[str] | None = None) -> str:
        return self.rng.choice(among or self.cluster.node_names())

    def vector(self, size: int) -> list[float]:
        """`size` values drawn uniformly from [-1, 1), 4 decimals each: `round(rng.uniform(-1, 1), 4)` each, the
        same values from the same draws, with the arithmetic of `uniform` inlined and `round` mapped in C."""
        draw = self.rng.random
        return list(map(round, [2.0 * draw() - 1.0 for _ in range(size)], itertools.repeat(4, size)))

    def points_new(self, collection: str, count: int) -> list[dict[str, Any]]:
        size = self.scenario.collections[collection].vector_size
        return [{"id": (point_id := next(self.ids)), "vector": self.vector(size),
                 "payload": {"w": point_id, "seed": self.seed}} for _ in range(count)]

    # -- cluster API --------------------------------------------------------------------------------------
    async def api(self, method: str, node: str, path: str, body: Any = None, timeout_s: float = 30.0) -> Any:
        """A call the plan needs to succeed (setup, cluster operations); raises ScenarioError if not."""
        url = f"{self.node_url(node)}{path}"
        try:
            async with self.session.request(method, url, json=body,
                                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                data = await response.json(content_type=None)
                if response.status >= 300:
                    raise ScenarioError(f"{method} {path} on {node} answered {response.status}: {data}")
                return data.get("result") if isinstance(data, dict) else data
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ScenarioError(f"{method} {path} on {node} failed: {error}") from error

    async def cluster_info(self, collection: str, node: str | None = None) -> dict[str, Any]:
        for name in ([node] if node else self.cluster.node_names()):
            with contextlib.suppress(ScenarioError):
                return dict(await self.api("GET", name, f"/collections/{collection}/cluster", timeout_s=5))
        raise ScenarioError(f"no node answered the cluster info of {collection}")

    async def replicas(self, collection: str) -> dict[int, dict[int, str]]:
        """`shard -> peer -> state`, as one node sees it."""
        return cluster_info_replicas(await self.cluster_info(collection))

    async def move_shard(self, collection: str, shard: int, source: int, target: int) -> None:
        self.log(f"move shard {shard} of {collection}: {self.name_of(source)} -> {self.name_of(target)}")
        await self.api("POST", self.name_of(source), f"/collections/{collection}/cluster", {
            "move_shard": {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}})

    async def replicate_shard(self, collection: str, shard: int, source: int, target: int) -> None:
        self.log(f"replicate shard {shard} of {collection}: {self.name_of(source)} -> {self.name_of(target)}")
        await self.api("POST", self.name_of(source), f"/collections/{collection}/cluster", {
            "replicate_shard": {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}})

    async def coordinator_state(self) -> dict[str, Any]:
        """The cluster state as its one writer has it (`GET {coordinator}/internal/state`): a node's view may be
        behind (a node just isolated keeps answering from what it last saw)."""
        try:
            async with self.session.get(f"{self.cluster.coordinator_url}/internal/state",
                                        timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    raise ScenarioError(f"the coordinator answered HTTP {response.status} for its state")
                return dict(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ScenarioError(f"the coordinator's state could not be read: {error}") from error

    async def coordinator_settled(self, collections: list[str]) -> bool:
        """Whether the coordinator has no transfer of these collections running and all their replicas Active."""
        state = await self.coordinator_state()
        if any(transfer.get("collection") in collections for transfer in state.get("transfers", [])):
            return False
        for name in collections:
            collection = state.get("collections", {}).get(name)
            if collection is None or any(st != ReplicaState.ACTIVE for replicas in collection["shards"].values()
                                         for st in replicas.values()):
                return False
        return True

    async def coordinator_settings(self, **settings: Any) -> None:
        async with self.session.put(f"{self.cluster.coordinator_url}/internal/settings", json=settings,
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status >= 300:
                raise ScenarioError(f"coordinator settings refused: {await response.text()}")

    # -- waiting ------------------------------------------------------------------------------------------
    async def wait_event(self, when: Predicate, timeout_s: float = 60.0) -> Event:
        try:
            return await self.pump.wait_event(when, timeout_s)
        except TimeoutError:
            raise ScenarioError(f"expected event did not come within {timeout_s} s") from None

    async def wait_transfers_done(self, collection: str, timeout_s: float = 120.0) -> None:
        await self.wait_until(lambda info: not info["shard_transfers"], collection, timeout_s,
                              "transfers to finish")

    async def wait_replicas_active(self, collection: str, timeout_s: float = 60.0) -> None:
        async def all_active() -> bool:
            replicas = await self.replicas(collection)
            return all(st == ReplicaState.ACTIVE for peers in replicas.values() for st in peers.values())
        await self.wait_condition(all_active, timeout_s, "every replica to be Active")

    async def wait_replica_state(self, collection: str, shard: int, peer: int, state: str | None,
                                 timeout_s: float = 30.0) -> None:
        async def reached() -> bool:
            return (await self.replicas(collection)).get(shard, {}).get(peer) == state
        await self.wait_condition(reached, timeout_s, f"{self.name_of(peer)}'s replica of shard {shard} "
                                                      f"to be {state}")

    async def wait_until(self, check: Callable[[dict[str, Any]], bool], collection: str, timeout_s: float,
                         what: str) -> None:
        async def condition() -> bool:
            return check(await self.cluster_info(collection))
        await self.wait_condition(condition, timeout_s, what)

    async def wait_condition(self, condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
        try:
            await wait_until(condition, timeout_s, interval_s=0.2, what=what, ignore=(ScenarioError,))
        except WaitTimeout:
            raise ScenarioError(f"timed out after {timeout_s} s waiting for {what}") from None

    def arm(self, name: str, when: Predicate, action: Callable[[Event], Awaitable[Any]], times: int = 1) -> None:
        """A phase-keyed fault: run `action` when an event matches `when`."""
        self.log(f"armed: {name}")
        self.pump.arm(name, when, action, times)

    # -- workload -----------------------------------------------------------------------------------------
    async def upsert(self, collection: str, count: int = 1, node: str | None = None) -> Outcome:
        process = next(self.processes)
        return await self.client.upsert(process, self.node_url(node or self.random_node()), collection,
                                        self.points_new(collection, count))

    async def load(self, collection: str, count: int, batch: int = 500) -> list[int]:
        """Upsert `count` new points in batches (recorded); returns the acknowledged ids."""
        acknowledged: list[int] = []
        process = next(self.processes)
        while count > 0:
            points = self.points_new(collection, min(batch, count))
            count -= len(points)
            outcome = await self.client.upsert(process, self.node_url(self.random_node()), collection, points)
            if outcome.completion != "ok":
                raise ScenarioError(f"loading {collection} failed: {outcome.error}")
            acknowledged.extend(p["id"] for p in points)
        return acknowledged

    async def shard_holders(self, collection: str, shard: int) -> tuple[int, int]:
        """(a peer holding an Active replica of the shard, a peer holding none), chosen with the RNG."""
        replicas = (await self.replicas(collection)).get(shard, {})
        holders = sorted(p for p, st in replicas.items() if st == ReplicaState.ACTIVE)
        others = sorted(self.peer_id(n) for n in self.cluster.node_names() if self.peer_id(n) not in replicas)
        if not holders or not others:
            raise ScenarioError(f"shard {shard} of {collection} has no Active holder or no free peer")
        return self.rng.choice(holders), self.rng.choice(others)

    async def snapshot_create(self, collection: str, node: str, shard: int | None = None) -> dict[str, Any]:
        """Take a collection (or shard) snapshot on `node` (recorded); returns its name and checksum."""
        outcome = await self.client.snapshot_create(next(self.processes), self.node_url(node), collection, shard,
                                                    self.peer_id(node))
        if outcome.completion != "ok":
            raise ScenarioError(f"snapshot of {collection} on {node} failed: {outcome.error}")
        result = outcome.body["result"]
        self.log(f"snapshot {result['name']} taken on {node}")
        return dict(result)

    def snapshot_url(self, node: str, collection: str, name: str, shard: int | None = None) -> str:
        """Where `node` serves a stored snapshot (a URL another node can recover from)."""
        base = f"/collections/{collection}" + ("" if shard is None else f"/shards/{shard}")
        return f"{self.node_url(node)}{base}/snapshots/{name}"

    async def snapshot_recover(self, collection: str, node: str, name: str, location: str,
                               priority: str | None, shard: int | None = None,
                               checksum: str | None = None) -> Outcome:
        self.log(f"recover {name} into {collection}" + (f"/{shard}" if shard is not None else "") +
                 f" on {node} with priority {priority or 'default'}")
        return await self.client.snapshot_recover(next(self.processes), self.node_url(node), collection, shard,
                                                  self.peer_id(node), name, location, priority, checksum)

    async def snapshot_download(self, node: str, collection: str, name: str, shard: int | None = None) -> bytes:
        async with self.session.get(self.snapshot_url(node, collection, name, shard),
                                    timeout=aiohttp.ClientTimeout(total=60)) as response:
            if response.status != 200:
                raise ScenarioError(f"download of {name} from {node} failed: HTTP {response.status}")
            return await response.read()

    async def digests(self, collection: str) -> dict[int, dict[int, str]]:
        """`shard -> peer -> digest` of every replica, read from every node."""
        result: dict[int, dict[int, str]] = {}
        for name in self.cluster.node_names():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                async with self.session.get(f"{self.node_url(name)}/internal/digests",
                                            timeout=aiohttp.ClientTimeout(total=5)) as response:
                    shards = (await response.json())["result"].get(collection, {})
                for shard, info in shards.items():
                    result.setdefault(int(shard), {})[self.peer_id(name)] = info["digest"]
        return result

    @contextlib.asynccontextmanager
    async def writers(self, collection: str, count: int = 2, batch: int = 5, interval_s: float = 0.05,
                      nodes: list[str] | None = None) -> AsyncIterator[WriterStats]:
        """Background writers upserting new points until the block ends."""
        stats = WriterStats()
        stop = asyncio.Event()
        seeds = [self.rng.randrange(1 << 30) for _ in range(count)]

        async def writer(process: int, rng: random.Random) -> None:
            while not stop.is_set():
                node = rng.choice(nodes or self.cluster.node_names())
                points = self.points_new(collection, batch)
                outcome = await self.client.upsert(process, self.node_url(node), collection, points)
                stats.operations += 1
                if outcome.completion == "ok":
                    stats.acknowledged_ids.extend(p["id"] for p in points)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s * rng.uniform(0.5, 1.5))

        failure: BaseException | None = None
        async with asyncio.TaskGroup() as tasks:
            for index, seed in enumerate(seeds):
                tasks.create_task(writer(100 + index, random.Random(seed)), name=f"writer {index}")
            try:
                yield stats
            except Exception as error:  # raised after the group, so that it is not wrapped in an ExceptionGroup
                failure = error
            finally:
                stop.set()
        if failure is not None:
            raise failure
