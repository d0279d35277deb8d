"""The target node is killed (SIGKILL) in the middle of the snapshot stream, then restarted.

Shard 0 is replicated to a free peer over a slowed link; at 40 % of the stream the target process is
killed. The source's attempts fail (nothing answers), and the transfer is aborted: the target replica is
Dead. When the target restarts with its data directory, it rejoins, and automatic recovery re-syncs its
replica. Expect: all replicas Active with equal digests, no acknowledged write lost.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario, at_stream_fraction


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 4000)
    source, target = await ctx.shard_holders("c", 0)
    target_name = ctx.name_of(target)
    await ctx.nemesis.bandwidth(target_name, ctx.name_of(source), kb_s=800)

    async def kill(event: dict) -> None:
        ctx.log(f"stream at {event['bytes']}/{event['bytes_total']} bytes: killing {target_name}")
        await ctx.nemesis.node_kill(target_name)

    ctx.arm("kill the target at 40 % of the stream", at_stream_fraction(0.4, "c", 0), kill)
    others = [n for n in ctx.cluster.node_names() if n != target_name]
    async with ctx.writers("c", count=2, batch=5, interval_s=0.1, nodes=others):
        await ctx.replicate_shard("c", 0, source, target)
        await ctx.wait_event(lambda e: e.get("kind") == "transfer.aborted" and e.get("shard") == 0, 60)
    await ctx.nemesis.heal_all()
    await ctx.wait_replicas_active("c", timeout_s=60)


SCENARIO = Scenario(
    name="target_killed_mid_stream",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
