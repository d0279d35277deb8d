"""The steps of an explored scenario: what a schedule's operations do, as calls a scenario file can read.

A scenario written from a schedule (cluster/explore/codegen.py, and every file in `scenarios/found/`)
builds one `Explore` over the run's `RunContext` and calls its methods in order:

    run = Explore(ctx, SCHEDULE_COLLECTIONS)
    await run.load("c", 200)
    async with run.workload("c", writers=1, batch=3, interval_ms=50), run.timed_faults([...]):
        await run.move("c", shard=0, source=0, target=0, faults=[Fault("kill_target", "restored")])
        await run.snapshot("s1", "c", shard=0, node=0)
        await run.recover("s1", node=0, via="upload", priority="snapshot")

Peers are roles resolved when a step runs (schedule.py explains the indices). A step never fails the plan
for what the chaos makes normal: a refused operation is retried after the cluster settled, then skipped and
logged; waits are bounded and a wait in vain is logged. What went wrong is for the checkers to judge from
the history, after heal and grace. Every random choice comes from `ctx.rng`, so a seed replays the steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import random
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cluster.explore.faults import Fault, FaultSkipped, Roles, fault_apply, phase_pauses, phase_predicate
from cluster.runner.context import RunContext, ScenarioError
from cluster.runner.events import Event, Trigger
from cluster.runner.scenario import CollectionSpec
from node.protocol import ReplicaState, cluster_info_replicas

SETTLE_S = 30.0
TRANSFER_END_S = 90.0
FAULT_HEAL_WAIT_S = 30.0
OPERATION_TRIES = 5
RETRY_PAUSE_S = 0.5
CREATE_S = 60.0
SPARSE_DIMENSIONS = 64
PROCESS_WRITERS, PROCESS_OVERWRITER, PROCESS_DELETER, PROCESS_READER = 100, 900, 910, 920


@dataclass
class ExploreCollection(CollectionSpec):
    """A collection of an explored scenario: `vectors` dense (one unnamed vector), named (two named dense
    vectors) or sparse (one named sparse vector)."""

    vectors: str = "dense"

    def body(self) -> dict[str, Any]:
        body = super().body()
        vector = {"size": self.vector_size, "distance": self.distance}
        if self.vectors == "named":
            body["vectors"] = {"a": vector, "b": dict(vector)}
        elif self.vectors == "sparse":
            del body["vectors"]
            body["sparse_vectors"] = {"s": {}}
        return body


@dataclass
class SnapshotTaken:
    collection: str
    shard: int | None
    node: str
    name: str
    checksum: str | None


@dataclass
class Armed:
    """A fault armed on a step's transfer: the trigger, and whether its action is over (healed or skipped)."""

    fault: Fault
    trigger: Trigger
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Explore:
    """The steps of one explored run over its `RunContext`."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.snapshots: dict[str, SnapshotTaken] = {}
        self.acknowledged: dict[str, list[int]] = {}
        self.roles_current: Roles | None = None
        self.roles_last: Roles | None = None

    # -- data -----------------------------------------------------------------------------------------------
    def spec(self, collection: str) -> CollectionSpec:
        return self.ctx.scenario.collections[collection]

    def vector(self, collection: str, rng: random.Random) -> Any:
        spec = self.spec(collection)
        kind = getattr(spec, "vectors", "dense")

        def dense() -> list[float]:
            return [round(rng.uniform(-1, 1), 4) for _ in range(spec.vector_size)]
        if kind == "named":
            return {"a": dense(), "b": dense()}
        if kind == "sparse":
            indices = sorted(rng.sample(range(SPARSE_DIMENSIONS), rng.randint(1, 6)))
            return {"s": {"indices": indices, "values": [round(rng.uniform(0.01, 1), 4) for _ in indices]}}
        return dense()

    def points_new(self, collection: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
        return [{"id": (point_id := next(self.ctx.ids)), "vector": self.vector(collection, rng),
                 "payload": {"w": point_id, "seed": self.ctx.seed}} for _ in range(count)]

    def node_any(self, rng: random.Random) -> str:
        return rng.choice(self.ctx.cluster.node_names())

    async def load(self, collection: str, count: int, batch: int = 200) -> None:
        """Upsert `count` new points before the chaos starts (a failure here is a plan failure)."""
        process = next(self.ctx.processes)
        while count > 0:
            points = self.points_new(collection, min(batch, count), self.ctx.rng)
            count -= len(points)
            outcome = await self.ctx.client.upsert(process, self.ctx.node_url(self.node_any(self.ctx.rng)),
                                                   collection, points)
            if outcome.completion != "ok":
                raise ScenarioError(f"loading {collection} failed: {outcome.error}")
            self.acknowledged.setdefault(collection, []).extend(p["id"] for p in points)

    @contextlib.asynccontextmanager
    async def workload(self, collection: str, writers: int = 1, batch: int = 3, interval_ms: int = 50,
                       overwrites: bool = False, deletes: bool = False, reads: bool = False) -> AsyncIterator[None]:
        """Background clients while the block runs: writers of new points, and optionally an overwriter of
        acknowledged ids (new content), a deleter and a reader. Each has its own seeded RNG."""
        stop = asyncio.Event()
        pool = self.acknowledged.setdefault(collection, [])
        ctx = self.ctx

        async def pace(rng: random.Random) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_ms / 1000 * rng.uniform(0.5, 1.5))

        async def writer(process: int, rng: random.Random) -> None:
            while not stop.is_set():
                points = self.points_new(collection, batch, rng)
                outcome = await ctx.client.upsert(process, ctx.node_url(self.node_any(rng)), collection, points)
                if outcome.completion == "ok":
                    pool.extend(p["id"] for p in points)
                await pace(rng)

        async def overwriter(rng: random.Random) -> None:
            while not stop.is_set():
                if pool:
                    ids = sorted(set(rng.choice(pool) for _ in range(batch)))
                    points = [{"id": i, "vector": self.vector(collection, rng),
                               "payload": {"w": i, "rewrite": rng.randrange(1 << 30)}} for i in ids]
                    await ctx.client.upsert(PROCESS_OVERWRITER, ctx.node_url(self.node_any(rng)), collection, points)
                await pace(rng)

        async def deleter(rng: random.Random) -> None:
            while not stop.is_set():
                if len(pool) > batch:
                    ids = sorted(set(rng.choice(pool) for _ in range(max(1, batch // 2))))
                    await ctx.client.delete(PROCESS_DELETER, ctx.node_url(self.node_any(rng)), collection, ids)
                await pace(rng)
                await pace(rng)

        async def reader(rng: random.Random) -> None:
            while not stop.is_set():
                if pool:
                    ids = sorted(set(rng.choice(pool) for _ in range(batch)))
                    await ctx.client.read(PROCESS_READER, ctx.node_url(self.node_any(rng)), collection, ids)
                await pace(rng)

        clients: list[tuple[str, Callable[[random.Random], Awaitable[None]]]] = []
        for index in range(writers):
            clients.append((f"writer {index}", functools.partial(writer, PROCESS_WRITERS + index)))
        if overwrites:
            clients.append(("overwriter", overwriter))
        if deletes:
            clients.append(("deleter", deleter))
        if reads:
            clients.append(("reader", reader))
        seeds = [ctx.rng.randrange(1 << 30) for _ in clients]
        async with self._background(stop, [(name, client(random.Random(seed)))
                                           for (name, client), seed in zip(clients, seeds, strict=True)]):
            yield

    @contextlib.asynccontextmanager
    async def _background(self, stop: asyncio.Event,
                          tasks_named: list[tuple[str, Awaitable[None]]]) -> AsyncIterator[None]:
        """Run the coroutines while the block runs; stop and await them after. The block's own error is raised
        as it is, not wrapped in an ExceptionGroup."""
        failure: BaseException | None = None
        async with asyncio.TaskGroup() as tasks:
            for name, coroutine in tasks_named:
                tasks.create_task(coroutine, name=name)  # type: ignore[arg-type]
            try:
                yield
            except Exception as error:
                failure = error
            finally:
                stop.set()
        if failure is not None:
            raise failure

    # -- faults ---------------------------------------------------------------------------------------------
    def roles_now(self) -> Roles:
        """The roles a fault not keyed to a transfer hits: the running transfer's, else the last one's, else
        the first two nodes'."""
        roles = self.roles_current or self.roles_last
        if roles is not None:
            return roles
        names = self.ctx.cluster.node_names()
        return Roles(names[0], names[1], tuple(names[2:]))

    def roles_of(self, source: str, target: str) -> Roles:
        others = tuple(n for n in self.ctx.cluster.node_names() if n not in (source, target))
        return Roles(source, target, others)

    async def fault_run(self, fault: Fault, roles: Roles, why: str) -> None:
        """Apply, hold for `duration_ms`, heal. Skipped faults are logged."""
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        try:
            heal = await fault_apply(self.ctx, fault, roles)
        except FaultSkipped as skipped:
            self.ctx.log(f"fault {fault.kind} ({why}) skipped: {skipped}")
            return
        except Exception as error:  # chaos on chaos (a pause of a node just killed): the fault did not happen
            self.ctx.log(f"fault {fault.kind} ({why}) could not be applied: {type(error).__name__}: {error}")
            return
        self.ctx.log(f"fault {fault.kind} applied ({why}; source {roles.source}, target {roles.target})")
        await asyncio.sleep(fault.duration_ms / 1000)
        try:
            await heal()
        except Exception as error:  # heal_all after the plan undoes what is still in force
            self.ctx.log(f"fault {fault.kind} ({why}) could not be healed now: {type(error).__name__}: {error}")

    def fault_arm(self, fault: Fault, matches: Callable[[Event], bool], why: str) -> Armed:
        """Arm `fault` to fire when a transfer `matches` accepts reaches its phase."""
        armed: Armed

        async def action(event: Event) -> None:
            try:
                roles = self.roles_of(self.ctx.name_of(int(event["from"])), self.ctx.name_of(int(event["to"])))
                await self.fault_run(fault, roles, f"{why}, phase {fault.phase}, attempt {event.get('attempt')}")
            finally:
                armed.done.set()
        assert fault.phase is not None
        trigger = self.ctx.pump.arm(f"{fault.kind} at {fault.phase} ({why})",
                                    phase_predicate(fault.phase, fault.fraction, matches), action)
        armed = Armed(fault, trigger)
        return armed

    async def faults_settled(self, armed: list[Armed]) -> None:
        """Disarm the faults that never fired; wait (bounded) for those that fired to be healed."""
        for item in armed:
            if item.trigger.fired == 0:
                item.trigger.times = 0
                item.done.set()
        for item in armed:
            try:
                await asyncio.wait_for(item.done.wait(), FAULT_HEAL_WAIT_S + item.fault.duration_ms / 1000)
            except TimeoutError:
                self.ctx.log(f"fault {item.fault.kind} not healed in time; heal_all will")

    @contextlib.asynccontextmanager
    async def timed_faults(self, faults: list[Fault]) -> AsyncIterator[None]:
        """Faults keyed to times: each fires `at_ms` after the block starts, on the roles of that moment."""
        stop = asyncio.Event()

        async def timed(fault: Fault) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), (fault.at_ms or 0) / 1000)
            if not stop.is_set():
                await self.fault_run(fault, self.roles_now(), f"at {fault.at_ms} ms")
        async with self._background(stop, [(f"timed fault {index}", timed(fault))
                                           for index, fault in enumerate(faults)]):
            yield

    async def fault(self, fault: Fault) -> None:
        """A fault between transfers: once the cluster settled, on the last transfer's roles."""
        await self.settle()
        await self.fault_run(fault, self.roles_now(), "between transfers")

    # -- the cluster ----------------------------------------------------------------------------------------
    async def cluster_call(self, node: str, path: str, body: Any, timeout_s: float = 30.0) -> tuple[int | None, Any]:
        """(status, body) of a cluster API call sent to `node`, or to the other nodes in turn when it cannot be
        reached (killed, paused); status None when no answer came."""
        answer: tuple[int | None, Any] = (None, "no node answered")
        for name in [node, *(n for n in self.ctx.cluster.node_names() if n != node)]:
            try:
                async with self.ctx.session.request("POST", f"{self.ctx.node_url(name)}{path}", json=body,
                                                    timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                    return response.status, await response.json(content_type=None)
            except aiohttp.ClientConnectorError as error:
                answer = (None, str(error))  # refused before anything was sent: another node may take it
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                return None, str(error)  # sent, the answer lost: it may have been applied
        return answer

    async def retry_pause(self, attempt: int) -> None:
        """Between tries of a refused operation: the cluster may need a moment (a node restarting)."""
        await asyncio.sleep(RETRY_PAUSE_S * attempt)

    async def replicas(self, collection: str) -> dict[int, dict[int, str]]:
        try:
            return await self.ctx.replicas(collection)
        except ScenarioError:
            return {}

    async def settle(self, timeout_s: float = SETTLE_S) -> None:
        """Wait until no transfer runs and every replica is Active (bounded; a wait in vain is logged)."""
        async def settled() -> bool:
            names = [name for name, spec in self.ctx.scenario.collections.items()
                     if spec.created_in_setup or name in self.acknowledged]  # the others are not created yet
            if not await self.ctx.coordinator_settled(names):
                return False
            for name in names:
                info = await self.ctx.cluster_info(name)
                if info["shard_transfers"]:
                    return False
                states = cluster_info_replicas(info)
                if any(st != ReplicaState.ACTIVE for peers in states.values() for st in peers.values()):
                    return False
            return True
        try:
            await self.ctx.wait_condition(settled, timeout_s, "the cluster to settle")
        except ScenarioError:
            self.ctx.log(f"the cluster did not settle within {timeout_s} s; going on")

    def transfer_key_matches(self, collection: str, shard: int, source: int, target: int) -> Callable[[Event], bool]:
        def matches(event: Event) -> bool:
            return event.get("collection") == collection and event.get("shard") == shard and \
                event.get("from") == source and event.get("to") == target
        return matches

    async def transfer_ended(self, collection: str, matches: Callable[[Event], bool], since: int) -> None:
        """Wait (bounded) until the transfer's end event came, or the cluster no longer lists it (its end event
        may be lost in a broker outage)."""
        def ended(event: Event) -> bool:
            return event.get("kind") in ("transfer.finished", "transfer.aborted") and matches(event)

        async def gone() -> bool:
            if any(ended(event) for event in self.ctx.pump.events[since:]):
                return True
            info = await self.ctx.cluster_info(collection)
            return not any(matches({"collection": collection, "shard": t.get("shard_id"), "from": t.get("from"),
                                    "to": t.get("to")}) for t in info["shard_transfers"])
        try:
            await self.ctx.wait_condition(gone, TRANSFER_END_S, "the transfer to end")
        except ScenarioError:
            self.ctx.log(f"the transfer did not end within {TRANSFER_END_S} s; going on")

    async def move(self, collection: str, shard: int, source: int = 0, target: int = 0, faults: list[Fault] | None = None,
                   abort_at: str | None = None, stream_kb_s: int | None = None) -> None:
        await self.transfer("move", collection, shard, source, target, faults or [], abort_at, stream_kb_s)

    async def replicate(self, collection: str, shard: int, source: int = 0, target: int = 0,
                        faults: list[Fault] | None = None, abort_at: str | None = None,
                        stream_kb_s: int | None = None) -> None:
        await self.transfer("replicate", collection, shard, source, target, faults or [], abort_at, stream_kb_s)

    async def transfer_peers(self, collection: str, shard: int, source: int, target: int) -> tuple[int, int] | None:
        replicas = (await self.replicas(collection)).get(shard, {})
        holders = sorted(p for p, st in replicas.items() if st == ReplicaState.ACTIVE)
        free = sorted(self.ctx.peer_id(n) for n in self.ctx.cluster.node_names() if self.ctx.peer_id(n) not in replicas)
        if not holders or not free:
            return None
        return holders[source % len(holders)], free[target % len(free)]

    async def transfer(self, kind: str, collection: str, shard: int, source_index: int, target_index: int,
                       faults: list[Fault], abort_at: str | None, stream_kb_s: int | None) -> None:
        """A move or a replicate with its phase-keyed faults (and a user abort), once the cluster settled."""
        ctx = self.ctx
        for attempt in range(1, OPERATION_TRIES + 1):
            if attempt > 1:
                await self.retry_pause(attempt)
            await self.settle()
            peers = await self.transfer_peers(collection, shard, source_index, target_index)
            if peers is None:
                ctx.log(f"{kind} of shard {shard}: no Active holder or no free peer (try {attempt})")
                continue
            source, target = peers
            started = await self.transfer_run(kind, collection, shard, source, target, faults, abort_at, stream_kb_s)
            if started:
                return
        if kind == "replicate":  # the replica count the checkers expect depends on it
            raise ScenarioError(f"replicate of shard {shard} of {collection} refused {OPERATION_TRIES} times")
        ctx.log(f"{kind} of shard {shard} of {collection} skipped: refused {OPERATION_TRIES} times")

    async def transfer_run(self, kind: str, collection: str, shard: int, source: int, target: int,
                           faults: list[Fault], abort_at: str | None, stream_kb_s: int | None) -> bool:
        ctx = self.ctx
        source_name, target_name = ctx.name_of(source), ctx.name_of(target)
        roles = self.roles_of(source_name, target_name)
        phases = [f.phase for f in faults if f.phase] + ([abort_at] if abort_at else [])
        pauses = phase_pauses(phases)
        if pauses:
            await ctx.coordinator_settings(transfer_phase_pause_s=pauses)
        slowed = await ctx.nemesis.bandwidth(target_name, source_name, kb_s=stream_kb_s) if stream_kb_s else None
        matches = self.transfer_key_matches(collection, shard, source, target)
        since = len(ctx.pump.events)
        why = f"{kind} {source_name}->{target_name} of {collection}/{shard}"
        armed = [self.fault_arm(fault, matches, why) for fault in faults]
        if abort_at is not None:
            armed.append(self.abort_arm(collection, shard, source, target, abort_at, matches))
        self.roles_current = roles
        try:
            ctx.log(f"{why}")
            operation = "move_shard" if kind == "move" else "replicate_shard"
            status, body = await self.cluster_call(source_name, f"/collections/{collection}/cluster", {
                operation: {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}})
            started = status == 200 or (status is None or status >= 500) and await self.transfer_started(matches, since)
            if not started:
                ctx.log(f"{why} refused: HTTP {status}: {body}")
            else:
                await self.transfer_ended(collection, matches, since)
            await self.faults_settled(armed)
            return started
        finally:
            self.roles_current = None
            self.roles_last = roles
            if slowed is not None:
                await slowed.heal()
            if pauses:
                await ctx.coordinator_settings(transfer_phase_pause_s={})

    async def transfer_started(self, matches: Callable[[Event], bool], since: int) -> bool:
        """Whether a transfer `matches` accepts started since event `since` (after an answer that never came)."""
        def started(event: Event) -> bool:
            return event.get("kind") == "transfer.started" and matches(event)
        try:
            await self.ctx.pump.wait_event(started, 5.0, since=since)
        except TimeoutError:
            return False
        return True

    def abort_arm(self, collection: str, shard: int, source: int, target: int, phase: str,
                  matches: Callable[[Event], bool]) -> Armed:
        fault = Fault("abort", phase)
        armed: Armed

        async def abort(event: Event) -> None:
            try:
                self.ctx.log(f"abort the transfer {source}->{target} of shard {shard} at {phase}")
                await self.cluster_call(self.ctx.name_of(source), f"/collections/{collection}/cluster", {
                    "abort_transfer": {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}})
            finally:
                armed.done.set()
        trigger = self.ctx.pump.arm(f"abort at {phase}", phase_predicate(phase, 0.5, matches), abort)
        armed = Armed(fault, trigger)
        return armed

    async def drop(self, collection: str, shard: int, replica: int = 0) -> None:
        """Drop a replica (index into the shard's replicas by peer id), retried after settling if refused."""
        for attempt in range(1, OPERATION_TRIES + 1):
            if attempt > 1:
                await self.retry_pause(attempt)
            await self.settle()
            replicas = sorted((await self.replicas(collection)).get(shard, {}))
            if not replicas:
                continue
            peer = replicas[replica % len(replicas)]
            status, body = await self.cluster_call(self.ctx.name_of(peer), f"/collections/{collection}/cluster",
                                                   {"drop_replica": {"shard_id": shard, "peer_id": peer}})
            self.ctx.log(f"drop {self.ctx.name_of(peer)}'s replica of {collection}/{shard}: HTTP {status}")
            if status == 200 or status is None and peer not in (await self.replicas(collection)).get(shard, {}):
                await self.settle()  # done (when the answer was lost, the replica is gone all the same)
                return
            self.ctx.log(f"drop refused (try {attempt}): {body}")
        raise ScenarioError(f"no replica of shard {shard} of {collection} could be dropped in {OPERATION_TRIES} tries "
                            "(the replica count the checkers expect depends on it)")

    async def restart(self, node: int) -> None:
        names = self.ctx.cluster.node_names()
        name = names[node % len(names)]
        self.ctx.log(f"restart {name} (kill -9, start on the same data)")
        await self.ctx.nemesis.node_restart(name)

    async def create_collection(self, collection: str) -> None:
        """Create a collection the setup left out, retried until it exists (bounded), then load a few points."""
        spec = self.spec(collection)
        ctx = self.ctx

        async def created() -> bool:
            node = self.node_any(ctx.rng)
            try:
                async with ctx.session.put(f"{ctx.node_url(node)}/collections/{collection}", json=spec.body(),
                                           timeout=aiohttp.ClientTimeout(total=15)) as response:
                    return response.status in (200, 409)
            except (aiohttp.ClientError, TimeoutError):
                return False  # that node is down or cut off: another try, maybe on another node
        try:
            await ctx.wait_condition(created, CREATE_S, f"collection {collection} to be created")
        except ScenarioError:
            raise ScenarioError(f"collection {collection} could not be created in {CREATE_S} s") from None
        self.acknowledged.setdefault(collection, [])
        await self.settle()
        await self.load(collection, 20)

    async def wait(self, ms: int) -> None:
        await asyncio.sleep(ms / 1000)

    # -- snapshots ------------------------------------------------------------------------------------------
    async def snapshot(self, label: str, collection: str, shard: int | None = None, node: int = 0) -> None:
        """A collection snapshot on a node (index into the nodes), or a shard snapshot on one of the shard's
        Active holders; kept under `label`. A failed snapshot leaves the label unset."""
        await self.settle()
        if shard is None:
            names = self.ctx.cluster.node_names()
            name = names[node % len(names)]
        else:
            holders = sorted(p for p, st in (await self.replicas(collection)).get(shard, {}).items()
                             if st == ReplicaState.ACTIVE)
            if not holders:
                self.ctx.log(f"snapshot {label}: no Active holder of {collection}/{shard}")
                return
            name = self.ctx.name_of(holders[node % len(holders)])
        try:
            taken = await self.ctx.snapshot_create(collection, name, shard)
        except ScenarioError as error:
            self.ctx.log(f"snapshot {label} failed: {error}")
            return
        self.snapshots[label] = SnapshotTaken(collection, shard, name, taken["name"], taken.get("checksum"))

    async def recover(self, label: str, node: int = 0, via: str = "url", priority: str | None = None,
                      corrupt: str | None = None, faults: list[Fault] | None = None) -> None:
        """Recover snapshot `label` on a node (a holder of the shard, or any node for a collection snapshot;
        `via` file recovers on the node that has the file), with faults keyed to the re-sync transfers the
        recovery causes."""
        taken = self.snapshots.get(label)
        if taken is None:
            self.ctx.log(f"recover {label}: no such snapshot was taken; skipped")
            return
        await self.settle()
        name = await self.recover_node(taken, node, via)
        if name is None:
            return
        armed = []
        pauses = phase_pauses([f.phase for f in faults or [] if f.phase])
        if pauses:
            await self.ctx.coordinator_settings(transfer_phase_pause_s=pauses)

        def matches(event: Event) -> bool:
            return event.get("collection") == taken.collection and \
                (taken.shard is None or event.get("shard") == taken.shard)
        for fault in faults or []:
            armed.append(self.fault_arm(fault, matches, f"re-sync after recovering {label} on {name}"))
        try:
            await self.recover_call(taken, name, via, priority, corrupt)
            await self.settle()
            await self.faults_settled(armed)
        finally:
            if pauses:
                await self.ctx.coordinator_settings(transfer_phase_pause_s={})

    async def recover_node(self, taken: SnapshotTaken, node: int, via: str) -> str | None:
        if via == "file":
            return taken.node
        if taken.shard is None:
            names = self.ctx.cluster.node_names()
            return names[node % len(names)]
        holders = sorted((await self.replicas(taken.collection)).get(taken.shard, {}))
        if not holders:
            self.ctx.log(f"recover: no replica of {taken.collection}/{taken.shard}")
            return None
        return self.ctx.name_of(holders[node % len(holders)])

    async def recover_call(self, taken: SnapshotTaken, name: str, via: str, priority: str | None,
                           corrupt: str | None) -> None:
        ctx = self.ctx
        if via == "upload":
            try:
                data = bytearray(await ctx.snapshot_download(taken.node, taken.collection, taken.name, taken.shard))
            except ScenarioError as error:
                ctx.log(f"download of {taken.name} failed: {error}")
                return
            checksum = None
            if corrupt == "bytes":
                position = byte_that_matters(bytes(data), ctx.rng)
                data[position] ^= 0xFF
            elif corrupt == "checksum":
                checksum = "0" * 64
            ctx.log(f"upload {taken.name} to {name} (priority {priority or 'default'}, corrupt {corrupt})")
            await ctx.client.snapshot_upload(next(ctx.processes), ctx.node_url(name), taken.collection, taken.shard,
                                             ctx.peer_id(name), taken.name, bytes(data), priority, checksum,
                                             corrupt=corrupt is not None)
            return
        if via == "url":
            location = ctx.snapshot_url(taken.node, taken.collection, taken.name, taken.shard)
        elif taken.shard is not None:
            location = taken.name  # a shard's own snapshot folder
        else:
            location = self.snapshot_file_url(name, taken.name)
        await ctx.snapshot_recover(taken.collection, name, taken.name, location, priority, taken.shard,
                                   taken.checksum)

    def snapshot_file_url(self, node: str, snapshot: str) -> str:
        data_dir = self.ctx.cluster.nodes[node].data_dir
        assert data_dir is not None, "a file recovery needs a node this launcher started"
        found = sorted((data_dir / "snapshots").rglob(snapshot))
        return f"file://{found[0] if found else data_dir / 'snapshots' / snapshot}"


def byte_that_matters(data: bytes, rng: random.Random) -> int:
    """The offset of a byte inside the data of the snapshot's largest member (its points): flipping a byte
    of a tar header's unused field or of the padding between members changes nothing a reader checks."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = [m for m in archive.getmembers() if m.isreg() and m.size > 0]
    except tarfile.TarError:
        members = []
    if not members:
        return len(data) // 2
    largest = max(members, key=lambda m: m.size)
    return int(largest.offset_data) + rng.randrange(largest.size)
