"""A plan with a bug of its own (an exception that is not a scenario finding): the tool failed (exit 3)."""

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    raise RuntimeError("a bug in the plan itself")


SCENARIO = Scenario(name="tool_bug", description=__doc__ or "", plan=plan, nodes=1,
                    collections={"c": CollectionSpec()}, checkers=("no_lost_writes",), grace_s=5)
