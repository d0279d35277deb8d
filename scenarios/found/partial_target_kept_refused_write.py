"""Found by the explorer: a Partial target kept writes that were refused (fixed).

2 nodes; c: 1 shard(s), replication factor 2, sparse vectors. 10 points loaded, then 1 writer(s) of 3 points
   every ~100 ms while the steps run:
1. take a shard 0 snapshot of c as `s1`
2. recover `s1` via file with priority replica: the stream link down at `partial`, healed after 100 ms (of
   the re-sync)

Found by shardsim explore (seed 46, in simulation, with no bug planted): replicas_converge failed, 1 of 1
shards diverged; shrunk from 11 steps and 3 faults to this in 49 runs. The shard recovery with priority
replica marks the recovered replica Dead and automatic recovery re-syncs it; while it is Partial, the link
from it to the source is down for 100 ms. Writes sent to it are applied there, fail on the source, and are
refused (no Active replica applied them), but the Partial target kept them and became Active with them when
its transfer finished. Now a node that refuses an update reports every replica that applied it without being
Active as failed: the transfer is aborted and the replica re-synced (node/replication/agent.py,
appliers_outdate). On real processes, before the fix, the shrunk schedule failed in 1 of 2 runs; after it, 0
of 3.

Schedule format 1 (scenarios/found/partial_target_kept_refused_write.json). Replay either of:
    shardsim replay scenarios/found/partial_target_kept_refused_write.json [--sim]
    shardsim run scenarios/found/partial_target_kept_refused_write.py --seed 46 [--sim]
"""

from cluster.explore.faults import Fault
from cluster.explore.steps import Explore, ExploreCollection
from cluster.runner import RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    run = Explore(ctx)
    await run.load('c', 10)
    async with run.workload('c', writers=1, batch=3, interval_ms=100, overwrites=False, deletes=False, reads=False):
        await run.snapshot('s1', 'c', shard=0, node=1)
        await run.recover('s1', node=0, via='file', priority='replica', faults=[Fault('link_down', 'partial', duration_ms=100, on='stream')])


SCENARIO = Scenario(
    name='partial_target_kept_refused_write',
    description=__doc__ or "",
    plan=plan,
    nodes=2,
    collections={
        'c': ExploreCollection(shard_number=1, replication_factor=2, vector_size=4, vectors='sparse'),
    },
    checkers=('replicas_converge', 'nothing_stuck', 'replication_factor', 'no_extra_replicas', 'transfer_retries', 'snapshot_integrity', 'priority_oracle'),
    default_priority='replica',
    grace_s=45.0,
    timeout_s=390.0,
)
