"""A small run with a handful of coordinator decisions, for step mode: create, then replicate one shard."""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 50)
    source, target = await ctx.shard_holders("c", 0)
    await ctx.replicate_shard("c", 0, source, target)
    await ctx.wait_transfers_done("c", timeout_s=60)


SCENARIO = Scenario(name="step_small", description=__doc__ or "", plan=plan, nodes=2,
                    collections={"c": CollectionSpec(shard_number=1, replication_factor=1)},
                    checkers=("no_lost_writes", "replicas_converge"), grace_s=10)
