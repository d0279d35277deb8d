"""Transfer torture: kill -9 the source, the target or both at each phase of a move or a replicate.

Issue 14, "what must be true" 6, third bullet. Each combination (move | replicate) x (source | target | both)
x phase is one scenario run by the scenario runner on real processes, with writers running (new points and
overwrites of loaded ones), judged by the same checkers as the scenarios: no acknowledged write lost (exact
vector and payload), Active replicas converge (equal digests), every shard has its replication factor
Active and no replica more (`no_extra_replicas`), nothing stuck.

The phases, each made wide enough for the kill by holding the transfer there (`transfer_phase_pause_s`):
- `before_stream`: the source installed its update queue, the target has not started streaming;
- `mid_stream`: the stream (slowed on the target->source link) passed a seeded fraction of its bytes;
- `restored`: the target swapped the snapshot in, not yet Partial;
- `partial`: the target is Partial, the updates queued meanwhile being replayed;
- `finished`: the transfer just finished.
"both" kills one of the two (seeded order), then the other a seeded moment later. The killed nodes are
restarted after a seeded time, then everything is healed and the cluster left to settle.

The collection has 2 shards on 3 nodes. A replicate restores a dropped replica (one replica of the shard
is dropped first, replication factor 2), so that in every run the replica count must end equal to the
replication factor; a move runs with a seeded replication factor of 1 (the only copy moves) or 2.

Cost: by default a subset of the combinations chosen by the seed (every kind x victim and every phase at
least once); `SHARDSIM_TORTURE_ALL=1` runs all 30, `SHARDSIM_TORTURE_ROUNDS=N` N seeded rounds,
`SHARDSIM_TORTURE_SEED` the first round's seed, `SHARDSIM_TORTURE_SUBSET` the subset's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.nemesis import FaultHandle
from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError, at_phase, at_stream_fraction
from cluster.runner.events import Event, Predicate
from cluster.runner.run import RunOptions, RunResult, scenario_run

KINDS = ("move", "replicate")
VICTIMS = ("source", "target", "both")
PHASES = ("before_stream", "mid_stream", "restored", "partial", "finished")
CHECKERS = ("no_lost_writes", "replicas_converge", "nothing_stuck", "replication_factor", "no_extra_replicas")
DEFAULT_SEED = 14
DEFAULT_SUBSET = 10
COLLECTION = "c"
VECTOR_SIZE = 32
START_ATTEMPTS = 3
OVERWRITER_PROCESS = 900


@dataclass(frozen=True)
class Combination:
    kind: str
    victim: str
    phase: str
    seed: int
    replication_factor: int = 2

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.victim}-{self.phase}-rf{self.replication_factor}-seed{self.seed}"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def combinations() -> list[Combination]:
    """The combinations to run: per round, a seeded subset covering every kind x victim and every phase
    (or all of them), each with its own seed for the timing details."""
    first_seed = env_int("SHARDSIM_TORTURE_SEED", DEFAULT_SEED)
    rounds = env_int("SHARDSIM_TORTURE_ROUNDS", 1)
    subset = env_int("SHARDSIM_TORTURE_SUBSET", DEFAULT_SUBSET)
    every = os.environ.get("SHARDSIM_TORTURE_ALL", "") not in ("", "0")
    chosen: list[Combination] = []
    for round_seed in range(first_seed, first_seed + rounds):
        rng = random.Random(round_seed)
        pairs = [(kind, victim) for kind in KINDS for victim in VICTIMS]
        phases = list(PHASES)
        rng.shuffle(pairs)
        rng.shuffle(phases)
        if every:
            picks = [(kind, victim, phase) for kind, victim in pairs for phase in phases]
        else:  # i -> (pairs[i % 6], phases[i % 5]) is one-to-one for i < 30 and covers both lists early
            picks = [(*pairs[i % len(pairs)], phases[i % len(phases)])
                     for i in range(min(subset, len(pairs) * len(phases)))]
        for kind, victim, phase in picks:
            seed = zlib.crc32(f"{round_seed}/{kind}/{victim}/{phase}".encode()) % 1_000_000
            # a move keeps the count with one replica too (the only copy moves); a replicate restores a dropped one
            factor = random.Random(seed).choice([1, 2]) if kind == "move" else 2
            chosen.append(Combination(kind, victim, phase, seed, factor))
    return chosen


# -- the plan -----------------------------------------------------------------------------------------------

def transfer_at(predicate: Predicate, source: int, target: int) -> Predicate:
    """`predicate`, for the transfer from `source` to `target` only (not a later automatic recovery)."""
    def when(event: Event) -> bool:
        return event.get("from") == source and event.get("to") == target and predicate(event)
    return when


def transfer_ended(source: int, target: int) -> Predicate:
    def when(event: Event) -> bool:
        return event.get("kind") in ("transfer.finished", "transfer.aborted") and \
            event.get("from") == source and event.get("to") == target
    return when


def phase_setup(combination: Combination, rng: random.Random) -> tuple[dict[str, float], Predicate, float]:
    """The phase pauses to set, the predicate of the phase, and the delay between the phase and the kill."""
    phase = combination.phase
    if phase == "before_stream":
        return {"queue_installed": 1.5}, at_phase("queue_installed", COLLECTION), rng.uniform(0.0, 0.5)
    if phase == "mid_stream":
        return {}, at_stream_fraction(rng.uniform(0.2, 0.8), COLLECTION), 0.0
    if phase == "restored":
        return {"restored": 1.5}, at_phase("restored", COLLECTION), rng.uniform(0.0, 0.5)
    if phase == "partial":  # the restore pause fills the queue; the replay pause keeps the target Partial
        return ({"restored": 1.0, "queue_replayed": 1.0}, at_phase("partial", COLLECTION),
                rng.uniform(0.0, 0.3))
    assert phase == "finished", phase
    return {}, at_phase("finished", COLLECTION), rng.uniform(0.0, 0.3)


@contextlib.asynccontextmanager
async def overwriting(ctx: RunContext, ids: list[int], rng: random.Random) -> AsyncIterator[None]:
    """While the block runs, upsert new content for loaded ids: a stale copy restored or replayed would bring
    old content back. The block's own error is raised as it is, not wrapped in an ExceptionGroup."""
    stop = asyncio.Event()

    async def overwrite() -> None:
        while not stop.is_set():
            points = [{"id": i, "vector": ctx.vector(VECTOR_SIZE), "payload": {"w": i, "rewrite": rng.randrange(1 << 30)}}
                      for i in sorted(rng.sample(ids, 3))]
            await ctx.client.upsert(OVERWRITER_PROCESS, ctx.node_url(rng.choice(ctx.cluster.node_names())),
                                    COLLECTION, points)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0.02, 0.08))

    failure: BaseException | None = None
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(overwrite(), name="overwriter")
        try:
            yield
        except Exception as error:
            failure = error
        finally:
            stop.set()
    if failure is not None:
        raise failure


def plan_for(combination: Combination) -> Any:
    async def plan(ctx: RunContext) -> None:
        rng = ctx.rng
        loaded = await ctx.load(COLLECTION, rng.randrange(1500, 3000))
        shard = rng.randrange(2)
        source, target = await ctx.shard_holders(COLLECTION, shard)
        if combination.kind == "replicate":
            source, target = await replica_dropped(ctx, shard, source)
        source_name, target_name = ctx.name_of(source), ctx.name_of(target)
        pauses, predicate, delay_s = phase_setup(combination, rng)
        await ctx.coordinator_settings(transfer_phase_pause_s=pauses)
        if combination.phase == "mid_stream":
            await ctx.nemesis.bandwidth(target_name, source_name, kb_s=rng.choice([150, 250, 400]))
        victims = {"source": [source_name], "target": [target_name]}.get(combination.victim)
        if victims is None:
            victims = [source_name, target_name]
            rng.shuffle(victims)
        between_s = rng.uniform(0.2, 1.0)
        down_s = rng.uniform(0.5, 2.5)
        killed = asyncio.Event()
        kills: list[FaultHandle] = []

        async def kill(event: Event) -> None:
            await asyncio.sleep(delay_s)
            for index, name in enumerate(victims):
                if index:
                    await asyncio.sleep(between_s)
                ctx.log(f"phase {event.get('phase')} of {source_name}->{target_name} (attempt "
                        f"{event.get('attempt')}): kill -9 {name}")
                kills.append(await ctx.nemesis.node_kill(name))
            killed.set()

        ctx.arm(f"kill {'+'.join(victims)} at {combination.phase}",
                transfer_at(predicate, source, target), kill)
        async with ctx.writers(COLLECTION, count=2, batch=3, interval_s=0.05), \
                overwriting(ctx, loaded, random.Random(rng.randrange(1 << 30))):
            if combination.kind == "move":
                await ctx.move_shard(COLLECTION, shard, source, target)
            else:
                await ctx.replicate_shard(COLLECTION, shard, source, target)
            await wait_killed(ctx, killed, source, target)
            await asyncio.sleep(down_s)
            await ctx.coordinator_settings(transfer_phase_pause_s={})
            for handle in kills:
                ctx.log(f"restart {handle.target}")
                await handle.heal()
            await ctx.wait_event(transfer_ended(source, target), 60.0)
        await ctx.nemesis.heal_all()
    return plan


async def replica_dropped(ctx: RunContext, shard: int, source: int) -> tuple[int, int]:
    """Drop one replica of the shard other than `source`'s; returns (source, a peer without a replica)."""
    replicas = (await ctx.replicas(COLLECTION)).get(shard, {})
    dropped = ctx.rng.choice(sorted(p for p in replicas if p != source))
    ctx.log(f"drop {ctx.name_of(dropped)}'s replica of shard {shard}, to be restored by a replicate")
    await ctx.api("POST", ctx.name_of(source), f"/collections/{COLLECTION}/cluster",
                  {"drop_replica": {"shard_id": shard, "peer_id": dropped}})
    await ctx.wait_replica_state(COLLECTION, shard, dropped, None)
    free = sorted(ctx.peer_id(n) for n in ctx.cluster.node_names() if ctx.peer_id(n) not in replicas or
                  ctx.peer_id(n) == dropped)
    return source, ctx.rng.choice(free)


async def wait_killed(ctx: RunContext, killed: asyncio.Event, source: int, target: int) -> None:
    """Wait for the kill; a transfer that ended before reaching the phase is a plan failure."""
    ended = asyncio.ensure_future(ctx.wait_event(transfer_ended(source, target), 90.0))
    done = asyncio.ensure_future(killed.wait())
    try:
        await asyncio.wait([ended, done], timeout=90.0, return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return
        if ended.done() and ended.exception() is None:
            # the kill may still be on its way (the phase came just before the end): give it a moment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), 5.0)
            if done.done():
                return
            raise ScenarioError(f"the transfer ended ({ended.result().get('kind')}) before the phase")
        raise ScenarioError("the transfer reached neither the phase nor its end within 90 s")
    finally:
        for future in (ended, done):
            future.cancel()
            with contextlib.suppress(asyncio.CancelledError, ScenarioError, TimeoutError):
                await future


def scenario_for(combination: Combination) -> Scenario:
    return Scenario(name=f"torture-{combination.kind}-{combination.victim}-{combination.phase}-rf"
                         f"{combination.replication_factor}",
                    description=__doc__ or "", plan=plan_for(combination), nodes=3,
                    collections={COLLECTION: CollectionSpec(shard_number=2,
                                                            replication_factor=combination.replication_factor,
                                                            vector_size=VECTOR_SIZE)},
                    checkers=CHECKERS, grace_s=45.0, timeout_s=150.0)


async def combination_run(combination: Combination, runs_dir: Path) -> tuple[RunResult, list[str]]:
    """Run one combination (started again if the cluster lost a port to a proxy link at start)."""
    for attempt in range(1, START_ATTEMPTS + 1):
        said: list[str] = []
        command = (f"SHARDSIM_TORTURE_SEED=... pytest tests/cluster/test_transfer_torture.py -k "
                   f"'{combination.name}'")
        result = await scenario_run(scenario_for(combination), combination.seed,
                                    RunOptions(runs_dir=runs_dir / f"start{attempt}", quiet=True),
                                    said.append, command)
        if result.exit_kind == "crash" and "address already in use" in (result.error or "") \
                and attempt < START_ATTEMPTS:
            continue
        return result, said
    raise AssertionError("unreachable")


COMBINATIONS = combinations()


@pytest.mark.timeout(400)
@pytest.mark.parametrize("combination", COMBINATIONS, ids=[c.name for c in COMBINATIONS])
async def test_kills_at_a_transfer_phase_lose_nothing_and_settle(combination: Combination,
                                                                 tmp_path: Path) -> None:
    result, said = await combination_run(combination, tmp_path)
    verdicts = "\n".join(f"  {r.name}: {r.valid} {r.summary}" for r in result.results)
    assert result.exit_kind == "ok", (f"{combination.name}: {result.exit_kind}\n{verdicts}\nrun folder "
                                      f"{result.run_dir}\nplan log:\n" + "\n".join(said))
