"""A replica's node is isolated from its peers during writes: its replicas go Dead, then are recovered.

Replication factor 2 over 3 nodes, writers on the two other nodes. One node is cut off from every link
(`isolate`): forwarded updates to it fail, so the coordinator marks its replicas Dead (the rule
`replica.update_failed` says which link failed). After healing, automatic recovery streams snapshots to
the Dead replicas. Expect: all replicas Active again with equal digests, no acknowledged write lost.
"""

import asyncio

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 1000)
    victim = ctx.random_node()
    others = [n for n in ctx.cluster.node_names() if n != victim]
    async with ctx.writers("c", count=2, batch=5, interval_s=0.05, nodes=others):
        await asyncio.sleep(1.0)
        isolation = await ctx.nemesis.isolate(victim)
        await ctx.wait_event(lambda e: e.get("kind") == "replica.state" and e.get("to") == "Dead"
                             and e.get("peer") == ctx.peer_id(victim), 30)
        await asyncio.sleep(2.0)
        await isolation.heal()
        await asyncio.sleep(1.0)
    await ctx.wait_replicas_active("c", timeout_s=60)


SCENARIO = Scenario(
    name="replica_isolated_during_writes",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=3, replication_factor=2, vector_size=16)},
)
