"""A deliberately broken run: acknowledged points are deleted behind the client's back.

The plan writes 20 points through the recording client, then deletes five of them with a raw HTTP call
that the history does not see. `no_lost_writes` must catch it: a correctness failure (exit code 1).
"""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    ids = await ctx.load("c", 20)
    url = f"{ctx.node_url('n1')}/collections/c/points/delete?wait=true"
    async with ctx.session.post(url, json={"points": ids[:5]}) as response:
        assert response.status == 200


SCENARIO = Scenario(name="lost_writes", description=__doc__ or "", plan=plan, nodes=2,
                    collections={"c": CollectionSpec(shard_number=1, replication_factor=2)},
                    checkers=("no_lost_writes", "replicas_converge"), grace_s=5)
