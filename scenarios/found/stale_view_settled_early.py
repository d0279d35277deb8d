"""Found by the explorer: the runner judged a cluster settled from a stale node's view (fixed).

3 nodes; c: 3 shard(s), replication factor 2, sparse vectors. 10 points loaded, then 1 writer(s) of 1 points
   every ~200 ms, overwrites while the steps run:
1. take a shard 0 snapshot of c as `s1`
2. recover `s1` via upload with priority replica: the stream link down at `finished`, healed after 2500 ms
   (of the re-sync)
3. kill -9 of the source between transfers, healed after 200 ms
4. latency on the replay link between transfers, healed after 300 ms
5. restart node #1 (kill -9, same data)
6. the source isolated between transfers, healed after 150 ms

Found by shardsim explore (seed 33, in simulation, no bug planted): nothing_stuck and replication_factor
failed, 3 replicas Dead at the end; shrunk from 9 steps to 6 in 87 runs. The last fault isolates a node just
before everything is healed. The runner then waited for the cluster to settle by asking the first node that
answered, and that node, isolated until a moment ago, still answered from its old view (every replica
Active): the runner stopped waiting at once and observed the cluster before automatic recovery had re-synced
the replicas the isolation made Dead. The runner (and the explorer's steps) now also ask the coordinator,
the one writer of the state (RunContext.coordinator_settled). A defect of the harness, not of the cluster:
its verdicts were wrong.

Schedule format 1 (scenarios/found/stale_view_settled_early.json). Replay either of:
    shardsim replay scenarios/found/stale_view_settled_early.json [--sim]
    shardsim run scenarios/found/stale_view_settled_early.py --seed 33 [--sim]
"""

from cluster.explore.faults import Fault
from cluster.explore.steps import Explore, ExploreCollection
from cluster.runner import RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    run = Explore(ctx)
    await run.load('c', 10)
    async with run.workload('c', writers=1, batch=1, interval_ms=200, overwrites=True, deletes=False, reads=False):
        await run.snapshot('s1', 'c', shard=0, node=0)
        await run.recover('s1', node=0, via='upload', priority='replica', faults=[Fault('link_down', 'finished', delay_ms=300, duration_ms=2500, on='stream')])
        await run.fault(Fault('kill_source', 'between', delay_ms=50, duration_ms=200))
        await run.fault(Fault('latency', 'between', duration_ms=300, on='replay', amount=0))
        await run.restart(1)
        await run.fault(Fault('isolation', 'between', delay_ms=300, duration_ms=150, on='source'))


SCENARIO = Scenario(
    name='stale_view_settled_early',
    description=__doc__ or "",
    plan=plan,
    nodes=3,
    collections={
        'c': ExploreCollection(shard_number=3, replication_factor=2, vector_size=16, vectors='sparse'),
    },
    checkers=('replicas_converge', 'nothing_stuck', 'replication_factor', 'no_extra_replicas', 'transfer_retries', 'snapshot_integrity', 'priority_oracle'),
    default_priority='replica',
    grace_s=45.0,
    timeout_s=630.0,
)
