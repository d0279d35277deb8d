"""Move a shard under 150 ms of latency on every link of the source, with writes going on.

Writers keep upserting through every node while shard 0 moves from its holder to a free peer. Every link
into the source node carries 150 ms (+-30 ms) of latency, so forwarded updates and the snapshot stream are
slow but never lost. Expect: the move finishes, the source replica is dropped, replicas converge and no
acknowledged write is lost.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 3000)
    source, target = await ctx.shard_holders("c", 0)
    source_name = ctx.name_of(source)
    for other in ctx.cluster.node_names():
        if other != source_name:
            await ctx.nemesis.latency(other, source_name, ms=150, jitter_ms=30)
    async with ctx.writers("c", count=2, batch=5, interval_s=0.1):
        await ctx.move_shard("c", 0, source, target)
        await ctx.wait_transfers_done("c", timeout_s=90)
    await ctx.nemesis.heal_all()
    await ctx.wait_replica_state("c", 0, source, None)


SCENARIO = Scenario(
    name="move_under_latency",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=16)},
)
