"""The coordinator is killed and restarted in the middle of a transfer: the transfer still finishes.

The coordinator keeps the cluster state in SQLite. While shard 0 replicates over a slowed link, the
coordinator process is killed (SIGKILL) at 30 % of the stream and started again. The source keeps
streaming; its reports to the coordinator are retried until it is back, and the restarted coordinator
resumes from its stored state (same version, same transfer). Expect: the transfer finishes, every replica is
Active with equal digests, nothing acknowledged is lost.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError, at_stream_fraction


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 4000)
    source, target = await ctx.shard_holders("c", 0)
    await ctx.nemesis.bandwidth(ctx.name_of(target), ctx.name_of(source), kb_s=800)

    async def restart(event: dict) -> None:
        ctx.log(f"stream at {event['bytes']}/{event['bytes_total']} bytes: restarting the coordinator")
        await ctx.cluster.coordinator_restart()

    ctx.arm("restart the coordinator at 30 % of the stream", at_stream_fraction(0.3, "c", 0), restart)
    async with ctx.writers("c", count=2, batch=5, interval_s=0.1):
        await ctx.replicate_shard("c", 0, source, target)
        finished = await ctx.wait_event(
            lambda e: e.get("kind") in ("transfer.finished", "transfer.aborted") and e.get("shard") == 0, 120)
    if finished["kind"] != "transfer.finished":
        raise ScenarioError(f"the transfer was aborted: {finished.get('reason')}")
    await ctx.nemesis.heal_all()


SCENARIO = Scenario(
    name="coordinator_restarted_mid_transfer",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=2, replication_factor=1, vector_size=64)},
)
