"""Shard recovery with priority `replica`: the existing replicas win, the recovered one is re-synced.

Replication factor 2. Batch A, a shard snapshot on one holder, batch B. Recovering the old snapshot on
that peer with `priority=replica` restores it, then marks the replica Dead (rule `priority.replica`):
another Active replica still has A and B, so automatic recovery streams that back. Expect: every replica
ends with A and B, nothing acknowledged is lost, and the oracle agrees.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 400)
    holder, _free = await ctx.shard_holders("c", 0)
    holder_name = ctx.name_of(holder)
    snapshot = await ctx.snapshot_create("c", holder_name, shard=0)
    await ctx.load("c", 200)
    await ctx.snapshot_recover("c", holder_name, snapshot["name"], snapshot["name"], "replica", shard=0)
    await ctx.wait_replicas_active("c", timeout_s=60)


SCENARIO = Scenario(
    name="priority_replica_wins",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=1, replication_factor=2, vector_size=8)},
    checkers=("no_lost_writes", "priority_oracle", "replicas_converge", "nothing_stuck",
              "replication_factor", "snapshot_integrity"),
)
