"""Found by the explorer: a write routed by an outdated state missed an Active replica (fixed).

3 nodes; c: 2 shard(s), replication factor 2, dense vectors. 100 points loaded, then 2 writer(s) of 1 points
   every ~200 ms while the steps run:
1. move shard 0 of c (Active holder #1 -> free peer #0)
2. the target partitioned from the rest between transfers, healed after 1500 ms
3. take a shard 1 snapshot of c as `s1`
- timed: the coord_target link down 1500 ms into the workload, healed after 750 ms

Found by shardsim explore (seed 100, in simulation, with no bug planted): replicas_converge failed, 1 of 2
shards diverged; shrunk from 6 steps and 4 faults to this in 47 runs. The move's target n3 is partitioned
and marked Dead; automatic recovery re-syncs it and makes it Active while the link from the coordinator to
n3 is down, so n3 still sees its own replica in Recovery, which takes no client updates. A write sent to n3
is routed by that outdated state: applied on n1's replica only, and acknowledged; n3's Active replica never
gets it. Now an update carries the state version and the replicas it was routed to; a replica whose state is
newer and has replicas taking updates that the routing left out refuses it, applying nothing, and the sender
pulls the state and routes it again (node/api/internal.py, routing_missed; node/replication/agent.py,
shard_update). On real processes, before the fix, the shrunk schedule failed in 2 of 2 runs; after it, 0 of
3.

Schedule format 1 (scenarios/found/stale_routing_missed_write.json). Replay either of:
    shardsim replay scenarios/found/stale_routing_missed_write.json [--sim]
    shardsim run scenarios/found/stale_routing_missed_write.py --seed 100 [--sim]
"""

from cluster.explore.faults import Fault
from cluster.explore.steps import Explore, ExploreCollection
from cluster.runner import RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    run = Explore(ctx)
    await run.load('c', 100)
    async with run.workload('c', writers=2, batch=1, interval_ms=200, overwrites=False, deletes=False, reads=False), \
            run.timed_faults([Fault('link_down', at_ms=1500, delay_ms=300, duration_ms=750, on='coord_target')]):
        await run.move('c', shard=0, source=1, target=0)
        await run.fault(Fault('partition', 'between', duration_ms=1500, on='target'))
        await run.snapshot('s1', 'c', shard=1, node=0)


SCENARIO = Scenario(
    name='stale_routing_missed_write',
    description=__doc__ or "",
    plan=plan,
    nodes=3,
    collections={
        'c': ExploreCollection(shard_number=2, replication_factor=2, vector_size=4, vectors='dense'),
    },
    checkers=('no_lost_writes', 'replicas_converge', 'nothing_stuck', 'replication_factor', 'no_extra_replicas', 'transfer_retries', 'snapshot_integrity'),
    default_priority='snapshot',
    grace_s=45.0,
    timeout_s=512.25,
)
