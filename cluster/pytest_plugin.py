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
Helpers for assertions: `wait_replicas_active`, `replica_digests`, `digests_equal`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from node.protocol import ReplicaState, cluster_info_replicas
from node.retry import WaitTimeout, wait_until


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


@pytest_asyncio.fixture
async def shardsim_client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def replica_digests(cluster: Cluster, collection: str) -> dict[int, dict[int, str]]:
    """`shard -> peer -> content digest` of every replica, read from every node that answers."""
    result: dict[int, dict[int, str]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for name in cluster.node_names():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                async with session.get(f"{cluster.node_url(name)}/internal/digests") as response:
                    shards = (await response.json())["result"].get(collection, {})
                for shard, info in shards.items():
                    result.setdefault(int(shard), {})[cluster.peer_id(name)] = info["digest"]
    return result


def digests_equal(digests: dict[int, dict[int, str]]) -> bool:
    return all(len(set(peers.values())) == 1 for peers in digests.values())


async def wait_replicas_active(cluster: Cluster, collection: str, timeout_s: float = 60.0,
                               node: str | None = None) -> dict[str, Any]:
    """Wait until no transfer runs and every replica of `collection` is Active; returns the cluster info."""
    info: dict[str, Any] = {}
    url = f"{cluster.node_url(node or cluster.node_names()[0])}/collections/{collection}/cluster"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async def settled() -> dict[str, Any] | None:
            nonlocal info
            async with session.get(url) as response:
                info = (await response.json())["result"]
            states = [state for peers in cluster_info_replicas(info).values() for state in peers.values()]
            if not info["shard_transfers"] and states and all(s == ReplicaState.ACTIVE for s in states):
                return info
            return None
        try:
            return await wait_until(settled, timeout_s, interval_s=0.2,
                                    ignore=(aiohttp.ClientError, TimeoutError, KeyError))
        except WaitTimeout:
            raise TimeoutError(f"replicas of {collection} not all Active after {timeout_s} s: {info}") from None
