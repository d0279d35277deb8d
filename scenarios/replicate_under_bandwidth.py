"""Replicate a shard while its stream is limited to 400 KB/s: slower, measurably, and still correct.

Shard 0 (a few MB) is replicated to a free peer while the link the target pulls the snapshot through is
limited to 400 KB/s. Writers go on meanwhile; the source queues their updates and replays them after the
restore. Expect: the transfer takes seconds (see the transfer arrow in the report), finishes, and both
replicas hold the same data with no acknowledged write lost.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 4000)
    source, target = await ctx.shard_holders("c", 0)
    await ctx.nemesis.bandwidth(ctx.name_of(target), ctx.name_of(source), kb_s=400)
    async with ctx.writers("c", count=2, batch=5, interval_s=0.1):
        await ctx.replicate_shard("c", 0, source, target)
        finished = await ctx.wait_event(
            lambda e: e.get("kind") in ("transfer.finished", "transfer.aborted") and e.get("shard") == 0, 120)
    if finished["kind"] != "transfer.finished":
        raise ScenarioError(f"the transfer was aborted: {finished.get('reason')}")
    await ctx.nemesis.heal_all()


SCENARIO = Scenario(
    name="replicate_under_bandwidth",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
