"""Faults keyed to transfer phases: after the source queued 10 updates, and after restore but before Partial.

The transfer is held 1.5 s after the restore (`transfer_phase_pause_s`), so a fault armed on the `restored`
phase lands before the target becomes Partial: the link from the source to the target goes down, so the
attempt fails (and is retried) or, once Partial, the replay or a forwarded update fails (the target goes
Dead and is re-synced). The run records when each trigger fired.
"""

import asyncio

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError, at_phase, at_queued


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 2000)
    source, target = await ctx.shard_holders("c", 0)
    source_name, target_name = ctx.name_of(source), ctx.name_of(target)
    await ctx.coordinator_settings(transfer_phase_pause_s={"restored": 1.5})
    slow = await ctx.nemesis.bandwidth(target_name, source_name, kb_s=600)
    fired: dict[str, dict] = {}

    async def note_queued(event: dict) -> None:
        fired["queued"] = event
        ctx.log(f"the source has queued {event['queued']} updates (phase {event['phase']})")

    async def cut_after_restore(event: dict) -> None:
        fired["restored"] = event
        ctx.log(f"restored on the target, not yet Partial: cutting {source_name}->{target_name}")
        handle = await ctx.nemesis.link_down(source_name, target_name)
        await asyncio.sleep(2.0)  # the fault's duration: the link stays down this long
        await handle.heal()

    ctx.arm("after the source queued 10 updates", at_queued(10, "c", 0), note_queued)
    ctx.arm("after restore, before Partial", at_phase("restored", "c", 0, attempt=1), cut_after_restore)
    async with ctx.writers("c", count=2, batch=2, interval_s=0.05):
        await ctx.replicate_shard("c", 0, source, target)
        await ctx.wait_event(lambda e: e.get("kind") == "transfer.finished", 60)
    await slow.heal()
    states = [e for e in ctx.pump.events if e.get("kind") == "replica.state" and e.get("peer") == target]
    first_partial = next((i for i, e in enumerate(ctx.pump.events) if e.get("kind") == "replica.state"
                          and e.get("to") == "Partial"), None)
    restored_index = ctx.pump.events.index(fired["restored"]) if "restored" in fired else None
    if "queued" not in fired or restored_index is None or first_partial is None:
        raise ScenarioError(f"a trigger did not fire: {sorted(fired)}")
    if restored_index > first_partial:
        raise ScenarioError("the restore trigger fired after the target became Partial")
    # the cut lands while the source waits for the target's answer (the attempt fails and is retried) or in
    # the pause before Partial (the queue replay, or a forwarded update, fails: the target goes Dead and is
    # re-synced); either way the first transfer attempt must not have gone through
    if not any(e.get("kind") in ("transfer.phase", "transfer.aborted") and e.get("attempt") == 1 and
               (e.get("phase") == "attempt_failed" or e.get("kind") == "transfer.aborted") for e in ctx.pump.events):
        raise ScenarioError("cutting the link before Partial did not stop the first attempt")
    ctx.log(f"target states: {[e['to'] for e in states]}")


SCENARIO = Scenario(name="phase_keyed", description=__doc__ or "", plan=plan, nodes=2,
                    collections={"c": CollectionSpec(shard_number=1, replication_factor=1, vector_size=32)})
