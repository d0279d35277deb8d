"""The empty-collection gotcha: restoring into a new replicated collection with `replica` gives nothing.

Collection `src` (1 shard, 1 replica) holds 300 points; a collection snapshot is taken on its holder.
Collection `dst` is new and empty, with replication factor 2. Recovering the snapshot into `dst` on one of
its holders with `priority=replica` lets the existing replicas win, and the other replica is Active and
empty: `dst` ends empty (Qdrant's docs warn about this). Recovering again with `priority=snapshot` is the
cure: the snapshot's data wins and spreads to the other replica. Expect: 0 points after the first recovery,
300 after the second; the oracle predicts both.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError


async def count(ctx: RunContext, collection: str) -> int:
    result = await ctx.api("POST", ctx.random_node(), f"/collections/{collection}/points/count", {"exact": True})
    return int(result["count"])


async def plan(ctx: RunContext) -> None:
    await ctx.load("src", 300)
    holder, _free = await ctx.shard_holders("src", 0)
    snapshot = await ctx.snapshot_create("src", ctx.name_of(holder))
    location = ctx.snapshot_url(ctx.name_of(holder), "src", snapshot["name"])
    dst_holders = sorted((await ctx.replicas("dst"))[0])
    target = ctx.name_of(ctx.rng.choice(dst_holders))
    await ctx.snapshot_recover("dst", target, snapshot["name"], location, "replica")
    await ctx.wait_replicas_active("dst", timeout_s=60)
    after_replica = await count(ctx, "dst")
    ctx.log(f"after priority=replica: dst has {after_replica} points (the gotcha)")
    await ctx.snapshot_recover("dst", target, snapshot["name"], location, "snapshot")
    await ctx.wait_replicas_active("dst", timeout_s=60)
    after_snapshot = await count(ctx, "dst")
    ctx.log(f"after priority=snapshot: dst has {after_snapshot} points (the cure)")
    if (after_replica, after_snapshot) != (0, 300):
        raise ScenarioError(f"expected 0 then 300 points in dst, saw {after_replica} then {after_snapshot}")


SCENARIO = Scenario(
    name="empty_collection_gotcha",
    description=__doc__ or "",
    plan=plan,
    collections={"src": CollectionSpec(shard_number=1, replication_factor=1, vector_size=8),
                 "dst": CollectionSpec(shard_number=1, replication_factor=2, vector_size=8)},
    checkers=("priority_oracle", "replicas_converge", "nothing_stuck", "replication_factor",
              "snapshot_integrity"),
)
