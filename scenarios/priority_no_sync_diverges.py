"""Shard recovery with priority `no_sync`: the recovered replica is Active and the others are untouched.

Replication factor 2. Batch A, a shard snapshot on one holder, batch B, then recovery of that snapshot on
the same peer with `priority=no_sync`. Its replica becomes Active with batch A only; the other replica stays
Active with A and B: the two Active replicas now differ, and that is what `no_sync` promises (Qdrant's
routing-token tests rely on it). Expect: the oracle predicts the two different digests; `replicas_converge`
allows the divergence because the history shows a `no_sync` recovery.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 400)
    holder, _free = await ctx.shard_holders("c", 0)
    holder_name = ctx.name_of(holder)
    snapshot = await ctx.snapshot_create("c", holder_name, shard=0)
    await ctx.load("c", 200)
    await ctx.snapshot_recover("c", holder_name, snapshot["name"], snapshot["name"], "no_sync", shard=0)
    await ctx.wait_replicas_active("c", timeout_s=30)


SCENARIO = Scenario(
    name="priority_no_sync_diverges",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=1, replication_factor=2, vector_size=8)},
    checkers=("priority_oracle", "replicas_converge", "nothing_stuck", "replication_factor",
              "snapshot_integrity"),
)
