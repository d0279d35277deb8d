"""The coordinator's core: the one writer of the cluster state.

Every change runs `change(mutate)`: under one lock, the mutation is applied to a copy of the state (so a
refused operation changes nothing), the step gate may hold it for a person to read (teaching mode), then
it is committed (version + 1), saved to SQLite, published (one `replica.state` event per decision, with its
rule and explanation) and pushed to every node. Background loops, owned by one TaskGroup, check peers'
health and start automatic recovery of Dead replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from cluster.coordinator import operations
from cluster.coordinator.auto_recovery import recovery_candidates
from cluster.coordinator.pusher import Pusher
from cluster.coordinator.state import ClusterState, Decision
from cluster.coordinator.store import StateStore
from node.eventbus import EventPublisher

log = logging.getLogger("shardsim.coordinator")
T = TypeVar("T")


@dataclass
class CoordinatorSettings:
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 6300
    mqtt_url: str | None = None
    cluster_name: str = "shardsim"
    api_key: str | None = None
    default_priority: str = "replica"
    incoming_transfers_limit: int = 1
    outgoing_transfers_limit: int = 1
    push_timeout_s: float = 2.0
    acks_timeout_s: float = 3.0
    health_interval_s: float = 0.5
    auto_recovery_interval_s: float = 0.5
    auto_recovery_backoff_s_max: float = 8.0
    call_timeout_s: float = 5.0
    step_timeout_s: float = 3600.0


class Coordinator:
    def __init__(self, settings: CoordinatorSettings) -> None:
        self.settings = settings
        self.store = StateStore(settings.db_path)
        self.state = ClusterState()
        loaded = self.store.load()
        if loaded is not None:
            self.state.data = loaded
        else:
            self.state.data["settings"].update(
                default_priority=settings.default_priority,
                incoming_transfers_limit=settings.incoming_transfers_limit,
                outgoing_transfers_limit=settings.outgoing_transfers_limit)
        self.events = EventPublisher(settings.mqtt_url, settings.cluster_name, "coordinator")
        self.lock = asyncio.Lock()
        self.session: aiohttp.ClientSession | None = None
        self.pusher: Pusher | None = None
        self.tasks: asyncio.TaskGroup | None = None
        self.healthy: set[int] = set()
        self.boots: dict[int, str] = {}
        self.recovery_not_before: dict[tuple[str, int, int], float] = {}
        self.recovery_backoff_s: dict[tuple[str, int, int], float] = {}
        self.step_mode = False
        self.step_continue = asyncio.Event()
        self.step_pending: list[dict[str, Any]] = []
        self.stopping = asyncio.Event()

    @property
    def headers(self) -> dict[str, str]:
        return {"api-key": self.settings.api_key} if self.settings.api_key else {}

    # -- lifecycle ----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Coordinator]:
        timeout = aiohttp.ClientTimeout(total=self.settings.call_timeout_s)
        async with self.events, aiohttp.ClientSession(timeout=timeout) as session, \
                asyncio.TaskGroup() as tasks:
            self.session, self.tasks = session, tasks
            self.pusher = Pusher(session, self.state_view, self.address_for, self.settings.push_timeout_s,
                                 self.headers)
            for peer in self.state.peer_ids():
                self.pusher.peer_ensure(peer, tasks)
            self.pusher.poke()
            loops = [tasks.create_task(self._health_loop(), name="health"),
                     tasks.create_task(self._recovery_loop(), name="auto-recovery")]
            self.events.publish("coordinator.started", version=self.state.version)
            try:
                yield self
            finally:
                self.stopping.set()
                self.step_continue.set()
                for task in [*loops, *self.pusher.tasks]:
                    task.cancel()
        self.store.close()

    def state_view(self, peer_id: int) -> dict[str, Any]:
        return self.state.view_for(peer_id)

    def address_for(self, peer_id: int) -> str | None:
        peer = self.state.data["peers"].get(str(peer_id))
        if peer is None:
            return None
        link = self.state.data["links"].get(f"coord->{peer['name']}")
        return str(link or peer["address"])

    # -- the one way to change the state -------------------------------------------------------------------
    async def change(self, mutate: Callable[[ClusterState], T], wait_acks: bool = True) -> tuple[T, int]:
        async with self.lock:
            candidate = ClusterState(copy.deepcopy(self.state.data))
            result = mutate(candidate)
            if candidate.decisions and self.step_mode:
                await self._step_gate(candidate.decisions)
            decisions = candidate.commit()
            self.store.save(candidate.data)
            self.state = candidate
            for decision in decisions:
                self._decision_publish(decision)
            version = candidate.version
            if self.pusher is not None and self.tasks is not None:
                for peer in candidate.peer_ids():
                    self.pusher.peer_ensure(peer, self.tasks)
                self.pusher.poke()
        if wait_acks and self.pusher is not None:
            await self.pusher.wait_acks(version, self.state.peer_ids(), self.settings.acks_timeout_s)
        return result, version

    def _decision_publish(self, decision: Decision) -> None:
        self.events.publish("replica.state", **decision.event())

    async def _step_gate(self, decisions: list[Decision]) -> None:
        """Teaching mode: hold the change until someone says continue (`POST /internal/step/continue`)."""
        self.step_pending = [d.event() for d in decisions]
        self.step_continue.clear()
        self.events.publish("decision.pending", decisions=self.step_pending, version=self.state.version)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.step_continue.wait(), self.settings.step_timeout_s)
        self.step_pending = []

    # -- background loops ---------------------------------------------------------------------------------
    async def _health_loop(self) -> None:
        assert self.session is not None
        while not self.stopping.is_set():
            peers = self.state.peer_ids()
            results = await asyncio.gather(*(self._peer_ready(peer) for peer in peers))
            self.healthy = {peer for peer, ready in zip(peers, results, strict=True) if ready}
            await asyncio.sleep(self.settings.health_interval_s)

    async def _peer_ready(self, peer: int) -> bool:
        assert self.session is not None
        address = self.address_for(peer)
        try:
            async with self.session.get(f"http://{address}/readyz", headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=1.0)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _recovery_loop(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(self.settings.auto_recovery_interval_s)
            candidates = recovery_candidates(self.state, self.healthy, self.recovery_not_before, time.time())
            for name, shard, source, target in candidates:
                await self.transfer_begin(name, {"shard_id": shard, "from_peer_id": source,
                                                 "to_peer_id": target}, sync=True,
                                          reason="automatic recovery of a Dead replica")

    # -- transfers ----------------------------------------------------------------------------------------
    async def transfer_begin(self, name: str, operation: dict[str, Any], sync: bool, reason: str) -> int:
        """Register a transfer (target -> Recovery), then ask the source node to drive it."""
        try:
            transfer, version = await self.change(
                lambda s: operations.transfer_start(s, name, operation, sync, reason))
        except operations.OperationError as error:
            if reason == "user":
                raise
            log.info("automatic transfer not started: %s", error.text())
            return self.state.version
        self.transfer_event("transfer.started", transfer)
        await self.transfer_kick(transfer)
        return version

    async def transfer_kick(self, transfer: dict[str, Any]) -> None:
        assert self.session is not None
        address = self.address_for(transfer["from"])
        try:
            async with self.session.post(f"http://{address}/internal/transfers/start", json=transfer,
                                         headers=self.headers) as response:
                if response.status == 200:
                    return
                reason = f"source refused to start the transfer (HTTP {response.status})"
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = f"source unreachable through coord->{self.state.peer_name(transfer['from'])} ({error})"
        await self.transfer_abort_key(transfer, reason)

    async def transfer_abort_key(self, transfer: dict[str, Any], reason: str) -> bool:
        key = (transfer["collection"], transfer["shard_id"], transfer["from"], transfer["to"])

        def abort(state: ClusterState) -> dict[str, Any] | None:
            current = state.transfer_find(*key)
            if current is not None:
                operations.transfer_abort(state, current, reason)
            return current
        aborted, _ = await self.change(abort)
        if aborted is not None:
            self.transfer_event("transfer.aborted", aborted, reason=reason)
            self.recovery_backoff(key[0], key[1], key[3])
        return aborted is not None

    def recovery_backoff(self, name: str, shard: int, target: int) -> None:
        key = (name, shard, target)
        backoff = min(self.recovery_backoff_s.get(key, 0.5) * 2, self.settings.auto_recovery_backoff_s_max)
        self.recovery_backoff_s[key] = backoff
        self.recovery_not_before[key] = time.time() + backoff

    def transfer_event(self, kind: str, transfer: dict[str, Any], **extra: Any) -> None:
        """Publish a transfer event; retries and aborts carry a rule id and a sentence (teaching mode)."""
        state = self.state
        source, target = state.peer_name(transfer["from"]), state.peer_name(transfer["to"])
        fields = {"collection": transfer["collection"], "shard": transfer["shard_id"], "from": transfer["from"],
                  "to": transfer["to"], "method": transfer.get("method", "snapshot"), "sync": transfer["sync"],
                  "phase": transfer.get("phase"), "bytes": transfer.get("bytes", 0),
                  "bytes_total": transfer.get("bytes_total"), "attempt": transfer.get("attempt", 1),
                  "queued": transfer.get("queued", 0), "cause": transfer.get("reason")}
        fields.update(extra)
        shard, attempt = transfer["shard_id"], transfer.get("attempt", 1)
        if kind == "transfer.aborted":
            fields["rule"] = "transfer.aborted"
            fields["explanation"] = (f"transfer of shard {shard} from {source} to {target} aborted: "
                                     f"{fields.get('reason')}")
        elif kind == "transfer.phase" and transfer.get("phase") == "attempt_failed":
            fields["rule"] = "transfer.retry"
            wait = {1: "1 s", 2: "2 s"}.get(int(attempt))
            then = f"the source retries in {wait}" if wait else "no attempt left: the transfer will be aborted"
            fields["explanation"] = (f"attempt {attempt} of the transfer of shard {shard} from {source} to "
                                     f"{target} failed ({fields.get('reason')}); {then}")
        elif kind == "transfer.started":
            fields["rule"] = "transfer.start"
            fields["explanation"] = (f"{'replicate' if transfer['sync'] else 'move'} shard {shard} from "
                                     f"{source} to {target} by snapshot streaming ({transfer.get('reason')})")
        self.events.publish(kind, **fields)

    async def peer_booted(self, peer: int, boot_id: str) -> None:
        """A peer restarted: transfers it takes part in are aborted, as Qdrant does."""
        previous = self.boots.get(peer)
        self.boots[peer] = boot_id
        if previous is None or previous == boot_id:
            return
        for transfer in list(self.state.data["transfers"]):
            if peer in (transfer["from"], transfer["to"]):
                await self.transfer_abort_key(transfer, f"Source or target peer restarted "
                                                        f"({self.state.peer_name(peer)})")
