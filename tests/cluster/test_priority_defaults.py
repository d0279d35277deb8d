"""The default snapshot priority and the empty-collection gotcha (docs/cluster.md, "Priority rules of
snapshot recovery").

shardsim's default priority is `replica` (as Qdrant's snapshot API document gives it; docs/cluster.md, "The
default priority"). With it, recovering a snapshot into a freshly created (empty) collection of a cluster
leaves it empty: the other, empty Active replica wins. Priority `snapshot` cures it, and so does starting the
cluster with `default_priority="snapshot"` (the coordinator's and nodes' `--default-priority snapshot`), which
is what Qdrant's server does since 1.9.3.
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster.helpers import ClusterApi, cluster_started, replica_map, wait_converged
from tests.helpers import points_make


async def source_snapshot_url(api: ClusterApi) -> str:
    """Collection `src` (1 shard, 2 replicas, 100 points) and the http URL of a collection snapshot of it."""
    await api.collection_create("n1", "src", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "src", points_make(range(100)))
    holder = api.cluster.name_of(min(replica_map(await api.state(), "src")[0]))
    name = (await api.ok(holder, "POST", "/collections/src/snapshots"))["name"]
    return f"{api.cluster.node_url(holder)}/collections/src/snapshots/{name}"


async def recover_into_fresh(api: ClusterApi, name: str, url: str, priority: str | None) -> None:
    """Create an empty `name` like `src` and recover the snapshot on a node holding one of its replicas."""
    await api.collection_create("n2", name, shard_number=1, replication_factor=2)
    node = api.cluster.name_of(min(replica_map(await api.state(), name)[0]))
    body = {"location": url} | ({"priority": priority} if priority else {})
    await api.ok(node, "PUT", f"/collections/{name}/snapshots/recover", body)


async def counts(api: ClusterApi, name: str) -> set[int]:
    return {await api.count(node, name) for node in ("n1", "n2", "n3")}


async def test_default_replica_priority_leaves_new_collection_empty_snapshot_cures_it(tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "run") as cluster, ClusterApi(cluster) as api:
        assert (await api.state())["settings"]["default_priority"] == "replica"
        url = await source_snapshot_url(api)
        await recover_into_fresh(api, "fresh", url, None)
        await wait_converged(api, "fresh", replicas_per_shard=2)
        assert await counts(api, "fresh") == {0}, "the gotcha: the empty existing replica won"
        await recover_into_fresh(api, "cured", url, "snapshot")
        await wait_converged(api, "cured", replicas_per_shard=2)
        assert await counts(api, "cured") == {100}


async def test_default_priority_snapshot_setting(tmp_path: Path) -> None:
    async with cluster_started(tmp_path / "run", default_priority="snapshot") as cluster, ClusterApi(cluster) as api:
        assert (await api.state())["settings"]["default_priority"] == "snapshot"
        url = await source_snapshot_url(api)
        await recover_into_fresh(api, "fresh", url, None)
        digests = await wait_converged(api, "fresh", replicas_per_shard=2)
        assert await counts(api, "fresh") == {100}
        assert digests == await wait_converged(api, "src", replicas_per_shard=2)
        await recover_into_fresh(api, "kept", url, "replica")
        await wait_converged(api, "kept", replicas_per_shard=2)
        assert await counts(api, "kept") == {0}, "an explicit priority still overrides the default"
