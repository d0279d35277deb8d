"""The source node is paused (SIGSTOP) in the middle of a transfer, then resumed (SIGCONT).

While shard 0 replicates, the source process is frozen for 3 s at 30 % of the stream: the stream stalls,
writes whose shard lives on the source are refused or time out (recorded honestly as fail or info), and
then the process resumes. The stream either continues or fails and is retried. Expect: the cluster settles
with every replica Active and equal digests; every acknowledged write is there.
"""

import asyncio

from cluster.runner import CollectionSpec, RunContext, Scenario, at_stream_fraction


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 4000)
    source, target = await ctx.shard_holders("c", 0)
    source_name = ctx.name_of(source)
    await ctx.nemesis.bandwidth(ctx.name_of(target), source_name, kb_s=800)

    async def pause(event: dict) -> None:
        ctx.log(f"stream at {event['bytes']}/{event['bytes_total']} bytes: pausing {source_name} for 3 s")
        handle = await ctx.nemesis.node_pause(source_name)
        await asyncio.sleep(3.0)
        await handle.heal()

    ctx.arm("pause the source at 30 % of the stream", at_stream_fraction(0.3, "c", 0), pause)
    others = [n for n in ctx.cluster.node_names() if n != source_name]
    async with ctx.writers("c", count=2, batch=5, interval_s=0.1, nodes=others):
        await ctx.replicate_shard("c", 0, source, target)
        await ctx.wait_event(
            lambda e: e.get("kind") in ("transfer.finished", "transfer.aborted") and e.get("shard") == 0, 90)
    await ctx.nemesis.heal_all()
    await ctx.wait_replicas_active("c", timeout_s=60)


SCENARIO = Scenario(
    name="source_paused_mid_transfer",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
