"""Collection recovery with priority `snapshot` over diverged replicas: the snapshot's data wins everywhere.

Replication factor 2. Batch A is written, a collection snapshot is taken on one holder of the shard, then
batch B is written (the snapshot does not have it). Recovering that snapshot on the same peer with
`priority=snapshot` makes its replica Active with the snapshot's data and marks the other Active replica
Dead (rule `priority.snapshot.others_dead`); automatic recovery then re-syncs it from the recovered one.
Expect: every replica ends with batch A only (batch B is gone by design, so `no_lost_writes` is not
checked here); the priority oracle predicts exactly that.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 400)
    holder, _free = await ctx.shard_holders("c", 0)
    holder_name = ctx.name_of(holder)
    snapshot = await ctx.snapshot_create("c", holder_name)
    await ctx.load("c", 200)
    await ctx.snapshot_recover("c", holder_name, snapshot["name"],
                               ctx.snapshot_url(holder_name, "c", snapshot["name"]), "snapshot")
    await ctx.wait_replicas_active("c", timeout_s=60)


SCENARIO = Scenario(
    name="priority_snapshot_diverged",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=1, replication_factor=2, vector_size=8)},
    checkers=("priority_oracle", "replicas_converge", "nothing_stuck", "replication_factor",
              "snapshot_integrity"),
)
