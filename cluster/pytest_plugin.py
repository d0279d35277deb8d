"""shardsim's pytest plugin: a real cluster, the nemesis and the checkers as fixtures for your own tests.

Installed with the package (entry point `pytest11`), so any suite can write:

    @pytest.mark.shardsim(nodes=3, default_priority="replica")
    async def test_writes_survive_a_partition(cluster, nemesis):
        ...

Fixtures (they need pytest-asyncio):
- `cluster`: a started `Cluster` (real node and coordinator processes on 127.0.0.1, a fault proxy on every
  link, an MQTT broker), stopped after the test even when it fails. Options come from the `shardsim` mark.
- `nemesis`: the `Nemesis` of that cluster; every fault still in force is healed after the test.
- `shardsim_client`: an `aiohttp.ClientSession` with a timeout.
- `shardsim_sim`: the same in simulation (docs/simulation.md), for one case over many seeds:
  `shardsim_sim(case, seed=7, nodes=3)` runs `await case(cluster, nemesis)` on a fresh simulated cluster
  (one process, virtual time, the seed replays it exactly); use it in a plain `def` test, parametrized by
  seed. Where the simulation cannot run (Python 3.11, simloop missing) the test is skipped, saying why.
Helpers for assertions: `wait_replicas_active` (and `replicas_active`, the same look without waiting),
`replica_digests`, `digests_equal`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from node.retry import WaitTimeout, wait_until

REPLICAS_POLL_S = 0.2
LOOK_TIMEOUT = aiohttp.ClientTimeout(total=5)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shardsim(**options): options of the `cluster` fixture (nodes, "
                                       "default_priority, transfers_limit, ...)")


@pytest_asyncio.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    marker = request.node.get_closest_marker("shardsim")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    nodes = int(options.pop("nodes", 3))
    async with Cluster(nodes=nodes, run_dir=tmp_path / "shardsim", **options) as started:
        yield started


@pytest_asyncio.fixture
async def nemesis(cluster: Cluster) -> AsyncIterator[Nemesis]:
    faults = Nemesis(cluster, cluster.events)
    try:
        yield faults
    finally:
        with contextlib.suppress(Exception):
            await faults.heal_all()


SimCase = Callable[[Any, Nemesis], Awaitable[Any]]


@pytest.fixture
def shardsim_sim(tmp_path: Path) -> Callable[..., Any]:
    """`shardsim_sim(case, seed=1, nodes=3, **cluster_options)`: `case(cluster, nemesis)` in simulation."""
    def run(case: SimCase, seed: int = 1, nodes: int = 3, **options: Any) -> Any:
        from cluster.sim.support import unavailable_reason
        reason = unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        from cluster.sim.run import case_run_sim
        return case_run_sim(case, seed, tmp_path / f"sim-seed{seed}", nodes=nodes, **options)
    return run


@pytest_asyncio.fixture
async def shardsim_client(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with a timeout; it carries the API key of the test's `cluster`, when the test has one."""
    headers = request.getfixturevalue("cluster").headers if "cluster" in request.fixturenames else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=headers) as session:
        yield session


async def replica_digests(cluster: Cluster, collection: str) -> dict[int, dict[int, str]]:
    """`shard -> peer -> content digest` of every replica, read from every node that answers."""
    result: dict[int, dict[int, str]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5), headers=cluster.headers) as session:
        for name in cluster.node_names():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                async with session.get(f"{cluster.node_url(name)}/internal/digests") as response:
                    shards = (await response.json())["result"].get(collection, {})
                for shard, info in shards.items():
                    result.setdefault(int(shard), {})[cluster.peer_id(name)] = info["digest"]
    return result


def digests_equal(digests: dict[int, dict[int, str]]) -> bool:
    return all(len(set(peers.values())) == 1 for peers in digests.values())


async def replicas_active(cluster: Cluster, collection: str, replicas_per_shard: int | None = None,
                          node: str | None = None, session: aiohttp.ClientSession | None = None,
                          seen: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """One look, no waiting: `node`'s cluster info of `collection` (Qdrant's `GET /collections/{c}/cluster`,
    `node` the first one by default) when the coordinator runs no transfer of it and holds every replica
    Active (`replicas_per_shard` of them per shard, when given), and that node's view says the same; else
    None, also when a process did not answer. `seen`, when given, gets what was read (for error messages)."""
    seen = {} if seen is None else seen
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession(timeout=LOOK_TIMEOUT,
                                                                            headers=cluster.headers))
        try:
            url = f"{cluster.coordinator_url}/internal/state"
            async with session.get(url, headers=cluster.headers) as reply:
                state = await reply.json()
            shards = state["collections"].get(collection, {}).get("shards", {})
            replicas = {int(s): {int(p): st for p, st in peers.items()} for s, peers in shards.items()}
            transfers = [t for t in state["transfers"] if t["collection"] == collection]
            url = f"{cluster.node_url(node or cluster.node_names()[0])}/collections/{collection}/cluster"
            async with session.get(url, headers=cluster.headers) as reply:
                info: dict[str, Any] = (await reply.json())["result"]
            view: dict[int, dict[int, str]] = {}
            for local in info["local_shards"]:
                view.setdefault(local["shard_id"], {})[info["peer_id"]] = local["state"]
            for remote in info["remote_shards"]:
                view.setdefault(remote["shard_id"], {})[remote["peer_id"]] = remote["state"]
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
            seen["error"] = repr(error)
            return None
    seen.clear()
    seen.update(coordinator=replicas, transfers=transfers, node=view, node_transfers=info["shard_transfers"])
    states = [state for peers in replicas.values() for state in peers.values()]
    counts_ok = replicas_per_shard is None or all(len(peers) == replicas_per_shard
                                                  for peers in replicas.values())
    settled = bool(states) and all(state == "Active" for state in states) and counts_ok and not transfers \
        and view == replicas and not info["shard_transfers"]
    return info if settled else None


async def wait_replicas_active(cluster: Cluster, collection: str, timeout_s: float = 60.0,
                               node: str | None = None, replicas_per_shard: int | None = None) -> dict[str, Any]:
    """Wait until `replicas_active` holds (no transfer of `collection` runs, every replica is Active, as the
    coordinator and `node` see it); returns `node`'s cluster info. `WaitTimeout` (a TimeoutError) says what
    was last seen."""
    seen: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=LOOK_TIMEOUT, headers=cluster.headers) as session:
        async def settled() -> dict[str, Any] | None:
            return await replicas_active(cluster, collection, replicas_per_shard, node, session, seen)
        try:
            info: dict[str, Any] | None = await wait_until(
                settled, timeout_s, REPLICAS_POLL_S, what=f"every replica of {collection} Active")
        except WaitTimeout as error:
            raise WaitTimeout(f"{error}; last seen: {seen}") from None
    assert info is not None  # wait_until returns only what is truthy
    return info
