"""Found by the explorer: an acknowledged delete lost to a symmetric partition (fixed).

2 nodes; c: 2 shard(s), replication factor 2, dense vectors. 100 points loaded, then 1 writer(s) of 3 points
   every ~100 ms, deletes while the steps run:
1. the target partitioned from the rest between transfers, healed after 100 ms

Found by shardsim explore (seed 8, in simulation), shrunk from 6 steps and 2 faults to this in 55 runs. Both
sides of a partition report each other as failed; the coordinator marks the first reported replica Dead and
refuses the second (never the last Active replica). Before the fix, the side marked Dead had already
acknowledged a delete that only it applied, and its re-sync from the other side brought the deleted point
back: no_lost_writes failed. Now a node waits until the coordinator took its failure reports into account
and refuses to acknowledge an update that no still-Active replica applied (node/replication/agent.py,
failures_confirm). On real processes the shrunk schedule did not fail in 2 runs before the fix: the delete
must be in flight during the 100 ms partition, which the simulation replays exactly from the seed.

Schedule format 1 (scenarios/found/symmetric_partition_write.json). Replay either of:
    shardsim replay scenarios/found/symmetric_partition_write.json [--sim]
    shardsim run scenarios/found/symmetric_partition_write.py --seed 8 [--sim]
"""

from cluster.explore.faults import Fault
from cluster.explore.steps import Explore, ExploreCollection
from cluster.runner import RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    run = Explore(ctx)
    await run.load('c', 100)
    async with run.workload('c', writers=1, batch=3, interval_ms=100, overwrites=False, deletes=True, reads=False):
        await run.fault(Fault('partition', 'between', delay_ms=300, duration_ms=100, on='target'))


SCENARIO = Scenario(
    name='symmetric_partition_write',
    description=__doc__ or "",
    plan=plan,
    nodes=2,
    collections={
        'c': ExploreCollection(shard_number=2, replication_factor=2, vector_size=4, vectors='dense'),
    },
    checkers=('no_lost_writes', 'replicas_converge', 'nothing_stuck', 'replication_factor', 'no_extra_replicas', 'transfer_retries'),
    default_priority='replica',
    grace_s=45.0,
    timeout_s=180.0,
)
