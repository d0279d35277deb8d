"""A plan that waits for an event that never comes: a liveness failure (exit code 2)."""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 5)
    await ctx.wait_event(lambda e: e.get("kind") == "transfer.finished", timeout_s=1.0)


SCENARIO = Scenario(name="never_happens", description=__doc__ or "", plan=plan, nodes=2,
                    collections={"c": CollectionSpec(shard_number=1, replication_factor=1)},
                    checkers=("no_lost_writes",), grace_s=5)
