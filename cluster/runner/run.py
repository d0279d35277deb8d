"""Running one scenario end to end: the one place that knows every piece.

start cluster -> setup (collections) -> plan (workload and faults) -> heal all -> grace (let the cluster
settle) -> final reads -> check -> report. The run folder holds `history.jsonl`, `verdicts.json`,
`report.html`, and the cluster's logs and data. Exit kinds: ok 0, correctness 1, liveness 2 (including a
plan that waited in vain), the tool itself failed 3.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cluster.checkers import EXIT_CODES, CheckResult, results_exit_kind, run_checkers
from cluster.history import HistoryWriter, history_load
from cluster.launcher import Cluster
from cluster.nemesis import Nemesis
from cluster.report import report_write
from cluster.runner.client import WorkloadClient, request_trace
from cluster.runner.context import RunContext, ScenarioError
from cluster.runner.events import Event, EventPump
from cluster.runner.observe import (
    points_read_all,
    replica_differences,
    replicas_observe,
    snapshot_files_observe,
)
from cluster.runner.scenario import Scenario, scenario_load
from node import clock, jsonwire
from node.eventbus import EventPublisher
from node.protocol import ReplicaState, TransferKey

log = logging.getLogger("shardsim.runner")
EVENTS_FLUSH_S = 0.3  # events published just before the cluster settled are still on their way


@dataclass
class RunOptions:
    runs_dir: Path = Path("runs")
    step: bool = False
    step_delay_s: float | None = None
    ui: bool = False
    quiet: bool = False
    cluster_options: dict[str, Any] = field(default_factory=dict)
    cluster_factory: Callable[..., Cluster] | None = None  # e.g. external mode (cluster/launcher/external.py)
    on_event: Callable[[Event], None] | None = None
    on_cluster: Callable[[Cluster], Any] | None = None
    sim: bool = False  # a simulated run (cluster/sim): says so in the history, the report and the replay command
    run_dir: Path | None = None  # the run folder to use instead of a new one under runs_dir


@dataclass
class RunResult:
    scenario: str
    seed: int
    run_dir: Path
    exit_kind: str
    exit_code: int
    results: list[CheckResult]
    seconds: float
    command: str
    report: Path | None
    error: str | None = None


def replay_command(path: Path, seed: int, sim: bool = False) -> str:
    return f"shardsim run {path}{' --sim' if sim else ''} --seed {seed}"


def run_dir_for(options: RunOptions, scenario: Scenario, seed: int) -> Path:
    stamp = dt.datetime.fromtimestamp(clock.now()).strftime("%Y%m%d-%H%M%S")
    return (options.runs_dir / f"{scenario.name}-seed{seed}-{stamp}").resolve()


async def run_scenario(path: Path, seed: int, options: RunOptions, say: Callable[[str], None]) -> RunResult:
    return await scenario_run(scenario_load(path), seed, options, say, replay_command(path, seed, options.sim))


async def scenario_run(scenario: Scenario, seed: int, options: RunOptions, say: Callable[[str], None],
                       command: str) -> RunResult:
    """Run a scenario given as an object (a file's `SCENARIO`, or one built by a test); `command` is what
    replays it, shown with a failure."""
    started = clock.monotonic()
    run_dir = options.run_dir or run_dir_for(options, scenario, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    error: str | None = None
    plan_failure: str | None = None
    history_path = run_dir / "history.jsonl"
    with HistoryWriter(history_path) as history:
        try:
            plan_failure = await run_cluster(scenario, seed, run_dir, command, history, options, say)
        except Exception as crash:
            error = f"{type(crash).__name__}: {crash}"
            (run_dir / "crash.txt").write_text(traceback.format_exc())
            say(f"the tool itself failed: {error} (traceback in {run_dir / 'crash.txt'})")
        history.phase("check")
    records = history_load(history_path)
    results = run_checkers(records, scenario.checkers)
    if plan_failure is not None:
        results.append(CheckResult("plan", False, f"the plan could not finish: {plan_failure}",
                                   {"kind": "liveness"}))
    exit_kind = "crash" if error is not None else results_exit_kind(results)
    if exit_kind == "correctness" and plan_failure is not None and not [
            r for r in results if r.valid is False and r.name != "plan"]:
        exit_kind = "liveness"
    report = report_write(run_dir, records, results, exit_kind)
    return RunResult(scenario.name, seed, run_dir, exit_kind, EXIT_CODES.get(exit_kind, 3), results,
                     clock.monotonic() - started, command, report, error)


async def run_cluster(scenario: Scenario, seed: int, run_dir: Path, command: str, history: HistoryWriter,
                      options: RunOptions, say: Callable[[str], None]) -> str | None:
    """Everything that needs the cluster; returns why the plan failed, if it did (a liveness finding)."""
    say(f"starting {scenario.nodes} nodes (run folder {run_dir})")
    cluster_options = {"default_priority": scenario.default_priority, **options.cluster_options}
    factory = options.cluster_factory or Cluster
    async with factory(nodes=scenario.nodes, run_dir=run_dir / "cluster", **cluster_options) as cluster, \
            aiohttp.ClientSession(headers=cluster.headers, trace_configs=[request_trace()],
                                  json_serialize=jsonwire.std_dumps) as session, \
            EventPublisher(cluster.mqtt_url, cluster.cluster_name, "client") as client_events, \
            EventPublisher(cluster.mqtt_url, cluster.cluster_name, "nemesis") as nemesis_events, \
            EventPump(str(cluster.mqtt_url), cluster.cluster_name, history, options.on_event) as pump:
        if options.on_cluster is not None:
            await options.on_cluster(cluster)
        history.meta(scenario.name, seed, command, scenario.default_priority,
                     {name: {"shard_number": spec.shard_number, "replication_factor": spec.replication_factor,
                             "write_consistency_factor": spec.write_consistency_factor}
                      for name, spec in scenario.collections.items()},
                     {str(cluster.peer_id(name)): name for name in cluster.node_names()},
                     mode="simulation" if options.sim else "real")
        nemesis = Nemesis(cluster, nemesis_events)
        ctx = RunContext(scenario, seed, cluster, nemesis, WorkloadClient(session, history, client_events),
                         history, pump, session, run_dir, say, random.Random(seed))
        if options.step:
            await ctx.coordinator_settings(step=True)
        plan_failure = await phases_run(ctx, options, say)
        return plan_failure


async def phases_run(ctx: RunContext, options: RunOptions, say: Callable[[str], None]) -> str | None:
    scenario, history = ctx.scenario, ctx.history
    history.phase("setup")
    if scenario.settings:
        await ctx.coordinator_settings(**scenario.settings)
    for name, spec in scenario.collections.items():
        if not spec.created_in_setup:
            continue
        await ctx.api("PUT", ctx.random_node(), f"/collections/{name}", spec.body())
        await ctx.wait_replicas_active(name)
    say("setup done; running the plan")
    history.phase("workload")
    plan_failure = None
    try:
        await asyncio.wait_for(scenario.plan(ctx), scenario.timeout_s)
    except ScenarioError as failure:
        plan_failure = str(failure)
    except TimeoutError:
        plan_failure = f"the plan did not finish within {scenario.timeout_s} s"
    if plan_failure:
        say(f"plan failed: {plan_failure}")
    history.phase("heal")
    healed = await ctx.nemesis.heal_all()
    say(f"healed {len(healed)} fault(s); letting the cluster settle (up to {scenario.grace_s} s)")
    history.phase("grace")
    await settle(ctx, scenario.grace_s)
    history.phase("final")
    await finals_record(ctx)
    errors = ctx.pump.trigger_errors
    if errors and plan_failure is None:
        plan_failure = "; ".join(errors)
    dead = ctx.cluster.dead_processes()
    if dead:
        say("processes that died on their own:\n" + "\n".join(dead))
    return plan_failure


async def settle(ctx: RunContext, grace_s: float) -> None:
    """Wait until no transfer runs and every replica is Active, and the event bus has caught up (every
    transfer it announced has ended), or the grace period ends."""
    async def settled() -> bool:
        if not await ctx.coordinator_settled(list(ctx.scenario.collections)):
            return False  # a node's view may be behind the coordinator's (an isolated node answers from its own)
        for name in ctx.scenario.collections:
            info = await ctx.cluster_info(name)
            if info["shard_transfers"]:
                return False
            replicas = await ctx.replicas(name)
            if any(state != ReplicaState.ACTIVE for peers in replicas.values() for state in peers.values()):
                return False
        return not transfers_open(ctx.pump.events)
    try:
        await ctx.wait_condition(settled, grace_s, "the cluster to settle")
    except ScenarioError:
        return
    await asyncio.sleep(EVENTS_FLUSH_S)


def transfers_open(events: list[Event]) -> set[TransferKey]:
    """Transfers whose `transfer.started` event has no `finished` or `aborted` event yet."""
    open_: set[TransferKey] = set()
    for event in events:
        if event.get("kind") == "transfer.started":
            open_.add(TransferKey.of(event))
        elif event.get("kind") in ("transfer.finished", "transfer.aborted"):
            open_.discard(TransferKey.of(event))
    return open_


async def finals_record(ctx: RunContext) -> None:
    names = list(ctx.scenario.collections)
    states = {name: await ctx.replicas(name) for name in names}
    replicas = await replicas_observe(ctx.session, ctx.cluster, names, states)
    ctx.history.final("replicas", replicas)
    differences = await replica_differences(ctx.session, ctx.cluster, replicas)
    if differences:
        ctx.history.final("replica_differences", differences)
    for name in names:
        node = await node_answering(ctx)
        ctx.history.final("read_all", await points_read_all(ctx.session, ctx.node_url(node), name))
    ctx.history.final("snapshot_files", await asyncio.to_thread(snapshot_files_observe, ctx.cluster))


async def node_answering(ctx: RunContext) -> str:
    for name in ctx.cluster.node_names():
        try:
            async with ctx.session.get(f"{ctx.node_url(name)}/readyz",
                                       timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return name
        except (aiohttp.ClientError, TimeoutError):
            continue
    raise ScenarioError("no node answers after healing")
