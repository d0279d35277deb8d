"""Link cut at 60 % of a snapshot stream: the attempt fails, the retry succeeds, no acknowledged write is lost.

Shard 0 is replicated to a peer that does not hold it while writers keep upserting through every node. The
stream (target pulls from source over the link `target->source`) is slowed to 1.5 MB/s so that it can be
watched; when it passes 60 %, the link goes down for half a second, which kills the stream mid-way. The
source retries after 1 s (Qdrant's rule: 3 attempts, waits of 1 s and 2 s) and the second attempt goes
through. Expect: one `attempt_failed`, then `transfer.finished`; replicas converge; nothing lost.
"""

import asyncio

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError, at_phase, at_stream_fraction


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 6000)
    source, target = await ctx.shard_holders("c", 0)
    source_name, target_name = ctx.name_of(source), ctx.name_of(target)
    slow = await ctx.nemesis.bandwidth(target_name, source_name, kb_s=1500)

    async def cut(event: dict) -> None:
        ctx.log(f"stream at {event['bytes']}/{event['bytes_total']} bytes: cutting {target_name}->{source_name}")
        handle = await ctx.nemesis.link_down(target_name, source_name)
        await asyncio.sleep(0.5)
        await handle.heal()

    ctx.arm("cut the link at 60 % of the first attempt's stream", at_stream_fraction(0.6, "c", 0, attempt=1), cut)
    async with ctx.writers("c", count=2, batch=5, interval_s=0.05):
        await ctx.replicate_shard("c", 0, source, target)
        await ctx.wait_event(at_phase("attempt_failed", "c", 0, attempt=1), timeout_s=60)
        finished = await ctx.wait_event(
            lambda e: e.get("kind") in ("transfer.finished", "transfer.aborted") and e.get("shard") == 0, 90)
    await slow.heal()
    if finished["kind"] != "transfer.finished":
        raise ScenarioError(f"the transfer was aborted instead of retried: {finished.get('reason')}")
    await ctx.wait_replicas_active("c")


SCENARIO = Scenario(
    name="link_cut_mid_stream",
    description=__doc__ or "",
    plan=plan,
    nodes=3,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
