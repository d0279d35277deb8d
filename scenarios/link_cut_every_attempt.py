"""The link is cut on every attempt: the transfer is aborted, the replicate target is Dead, then recovered.

The target's link to the source closes every connection after 64 KB of response (a `limit_data` toxic), so
every attempt of the snapshot stream dies part-way. After 3 attempts (waits of 1 s and 2 s) the source
aborts: the replicate target becomes Dead. Once the fault is healed, automatic recovery re-syncs the Dead
replica from the Active one. Expect: `transfer.aborted`, a Dead replica, then a new transfer that finishes;
replicas converge, nothing is lost.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 3000)
    source, target = await ctx.shard_holders("c", 0)
    await ctx.coordinator_settings(incoming_transfers_limit=0, outgoing_transfers_limit=0)
    cut = await ctx.nemesis.cut_after(ctx.name_of(target), ctx.name_of(source), 64 * 1024)
    async with ctx.writers("c", count=1, batch=5, interval_s=0.1):
        await ctx.replicate_shard("c", 0, source, target)
        await ctx.wait_event(lambda e: e.get("kind") == "transfer.aborted" and e.get("shard") == 0, 60)
    await ctx.wait_replica_state("c", 0, target, "Dead")
    await cut.heal()
    await ctx.coordinator_settings(incoming_transfers_limit=1, outgoing_transfers_limit=1)
    await ctx.wait_event(lambda e: e.get("kind") == "transfer.finished" and e.get("shard") == 0, 60)
    await ctx.wait_replicas_active("c")


SCENARIO = Scenario(
    name="link_cut_every_attempt",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
