"""The coordinator's core: the one writer of the cluster state.

Every change runs `change(mutate)`: under one lock, the mutation is applied to a copy of the state (so a
refused operation changes nothing), the step gate may hold it for a person to read (teaching mode), then
it is committed (version + 1), saved to SQLite, published (one `replica.state` event per decision, with its
rule and explanation) and pushed to every node. Background loops, owned by one TaskGroup, check peers'
health and start automatic recovery of Dead replicas. The transfer lifecycle lives in transfers.py; each
HTTP request of server.py is one method here (or of `Coordinator.transfers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from cluster.coordinator import operations, priority
from cluster.coordinator.auto_recovery import AUTOMATIC_REASON, peers_healthy, recovery_candidates
from cluster.coordinator.pusher import Pusher
from cluster.coordinator.state import ClusterState, Decision
from cluster.coordinator.store import StateStore
from cluster.coordinator.transfers import Transfers
from node import logs
from node.apikey import api_key_headers
from node.eventbus import EventPublisher
from node.protocol import PRIORITY_DEFAULT, PRIORITY_DEFAULT_CHOICES, TransferKey
from node.settings_args import setting

T = TypeVar("T")
COORDINATOR_HOST = "coordinator"  # its name in log lines (node/logs.py)


@dataclass
class CoordinatorSettings:
    """Read from the command line by `python -m cluster.coordinator` (one flag per field, see its --help)."""

    db_path: Path = field(default=Path("coordinator.sqlite"), metadata=setting(
        "the SQLite file of the cluster state (a restart resumes from it)", flag="--db"))
    host: str = field(default="127.0.0.1", metadata=setting("address to listen on"))
    port: int = field(default=6300, metadata=setting("HTTP port of the cluster API"))
    mqtt_url: str | None = field(default=None, metadata=setting(
        "the event bus (mqtt://host:port); none means no events", env="SHARDSIM_MQTT_URL"))
    cluster_name: str = field(default="shardsim", metadata=setting(
        "the cluster's name in event topics", env="SHARDSIM_CLUSTER"))
    api_key: str | None = field(default=None, metadata=setting(
        "the key the nodes require, sent on every call to them; every route of the coordinator but /healthz "
        "and /readyz requires it too", env="QDRANT__SERVICE__API_KEY"))
    alt_api_key: str | None = field(default=None, metadata=setting(
        "a second key accepted as well as --api-key, to rotate keys", env="QDRANT__SERVICE__ALT_API_KEY"))
    default_priority: str = field(default=PRIORITY_DEFAULT, metadata=setting(
        "snapshot recovery priority when a request gives none", choices=PRIORITY_DEFAULT_CHOICES))
    incoming_transfers_limit: int = field(default=1, metadata=setting(
        "automatic recovery: transfers into one peer at a time (0 turns it off)"))
    outgoing_transfers_limit: int = field(default=1, metadata=setting(
        "automatic recovery: transfers out of one peer at a time (0 turns it off)"))
    push_timeout_s: float = field(default=2.0, metadata=setting("one push of the state to a node"))
    acks_timeout_s: float = field(default=3.0, metadata=setting(
        "how long a change waits for every node to acknowledge the new state"))
    health_interval_s: float = field(default=0.5, metadata=setting("how often every peer's /readyz is checked"))
    auto_recovery_interval_s: float = field(default=0.5, metadata=setting(
        "how often Dead replicas are looked for"))
    auto_recovery_backoff_s_max: float = field(default=8.0, metadata=setting(
        "longest wait before recovering the same replica again"))
    call_timeout_s: float = field(default=5.0, metadata=setting("a call to a node"))
    step_timeout_s: float = field(default=3600.0, metadata=setting(
        "step mode: a held decision goes on by itself after this long"))


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
        self.failed_at: dict[int, float] = {}  # peer -> loop time of its last failed update (auto_recovery.py)
        self.transfers = Transfers(self, settings.auto_recovery_backoff_s_max)
        self.step_mode = False
        self.step_continue = asyncio.Event()
        self.step_pending: list[dict[str, Any]] = []
        self.stopping = asyncio.Event()

    @property
    def headers(self) -> dict[str, str]:
        return api_key_headers(self.settings.api_key, self.settings.alt_api_key)

    # -- lifecycle ----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Coordinator]:
        logs.host_set(COORDINATOR_HOST)  # lines logged by its tasks say which host it is (node/logs.py)
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

    def state_view(self, peer_id: int | None) -> dict[str, Any]:
        """The state as `peer_id` sees it (ClusterState.view_for), transfer comments written as of now."""
        return operations.comments_render(self.state.view_for(peer_id), self.transfers.clock())

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
            started = asyncio.get_running_loop().time()
            results = await asyncio.gather(*(self._peer_ready(peer) for peer in peers))
            self.healthy = peers_healthy(dict(zip(peers, results, strict=True)), started, self.failed_at)
            await asyncio.sleep(self.settings.health_interval_s)

    def peer_failed(self, peer: int) -> None:
        """A peer failed an update: not healthy (no recovery toward it) until a health check started later passes."""
        self.failed_at[peer] = asyncio.get_running_loop().time()
        self.healthy.discard(peer)

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
            candidates = recovery_candidates(self.state, self.healthy, self.transfers.recovery_not_before,
                                             self.transfers.clock())
            for name, shard, source, target in candidates:
                await self.transfers.begin(name, {"shard_id": shard, "from_peer_id": source,
                                                  "to_peer_id": target}, sync=True,
                                           reason=AUTOMATIC_REASON)

    # -- requests, one method each (server.py parses and answers) -----------------------------------------
    async def acks_wait(self, version: int) -> set[int]:
        """Wait until the live peers applied `version` (or the acks timeout); returns the peers that did."""
        if self.pusher is None:
            return set()
        return await self.pusher.wait_acks(version, self.state.peer_ids(), self.settings.acks_timeout_s)

    async def state_pulled(self, peer_id: int | None, boot_id: str | None, version: int | None,
                           ) -> dict[str, Any]:
        """A node pulls its view, saying which boot it runs and which version it applied."""
        if peer_id is not None and boot_id:
            await self.transfers.peer_booted(peer_id, boot_id)
        if peer_id is not None and version is not None and self.pusher is not None:
            await self.pusher.ack(peer_id, version)
        return self.state_view(peer_id)

    async def topology_set(self, peers: list[tuple[int, str, str]], links: dict[str, str] | None) -> int:
        """The launcher declares the peers `(peer_id, name, address)` and the proxy links between them."""
        def apply(state: ClusterState) -> None:
            for peer_id, name, address in peers:
                state.peer_set(peer_id, name, address)
            if links is not None:
                state.links_set(links)
        _, version = await self.change(apply, wait_acks=False)
        return version

    async def peer_register(self, peer_id: int, name: str, address: str) -> int:
        _, version = await self.change(lambda s: s.peer_set(peer_id, name, address), wait_acks=False)
        return version

    async def settings_update(self, changes: dict[str, Any], step: bool | None) -> tuple[dict[str, Any], int]:
        """Change the settings in the state; `step` turns the teaching step mode on or off (off releases)."""
        if step is not None:
            self.step_mode = step
            if not self.step_mode:
                self.step_continue.set()
        _, version = await self.change(lambda s: s.data["settings"].update(changes), wait_acks=False)
        return self.state.data["settings"], version

    def step_release(self) -> int:
        """Teaching mode: let the held change go on."""
        self.step_continue.set()
        return self.state.version

    async def collection_create(self, name: str, config: dict[str, Any]) -> int:
        """Place the replicas (Initializing), wait for the nodes, then Active where created, else Dead."""
        _, version = await self.change(lambda s: operations.collection_create(s, name, config))
        ready = await self.acks_wait(version)
        _, version = await self.change(lambda s: operations.collection_activate(s, name, ready))
        return version

    async def collection_delete(self, name: str) -> int:
        def remove(state: ClusterState) -> None:
            operations.collection_get(state, name)
            state.collection_remove(name)
        _, version = await self.change(remove)
        return version

    def peers_status(self) -> dict[str, dict[str, Any]]:
        """`{peer: {"healthy", "version"}}`: the last health check and the newest version each peer applied."""
        acked = self.pusher.acked if self.pusher is not None else {}
        return {str(p): {"healthy": p in self.healthy, "version": acked.get(p)} for p in self.state.peer_ids()}

    async def peer_remove(self, peer: int, force: bool) -> int:
        """Remove a peer from the cluster (operations.peer_remove); its aborted transfers are published."""
        aborted, version = await self.change(lambda s: operations.peer_remove(s, peer, force))
        for transfer in aborted:
            self.transfers.event("transfer.aborted", transfer, reason=f"peer {peer} removed from the cluster")
        self.healthy.discard(peer)
        return version

    async def payload_index_set(self, name: str, field: str, schema: Any | None) -> int:
        _, version = await self.change(lambda s: operations.payload_index_set(s, name, field, schema))
        return version

    async def replica_drop(self, name: str, operation: dict[str, Any]) -> int:
        _, version = await self.change(lambda s: operations.replica_drop(s, name, operation))
        return version

    # -- snapshot recovery on a peer: ManualRecovery, then the priority rules (priority.py) ------------------
    async def recovery_begin(self, name: str, shards: list[int], peer: int, added: list[int],
                             ) -> tuple[dict[int, str | None], int]:
        """A collection recovery starts on `peer`; returns its replicas' previous states (None: new)."""
        return await self.change(lambda s: priority.recovery_begin(s, name, shards, peer, added))

    async def recovery_abort(self, name: str, previous: dict[int, str | None], peer: int, reason: str) -> int:
        _, version = await self.change(lambda s: priority.recovery_restore(s, name, previous, peer, reason))
        return version

    async def recovery_finish(self, name: str, peer: int, shards: list[int], previous: dict[int, str | None],
                              chosen: str | None, kind: str) -> str:
        """`peer` restored `shards`: apply the priority (the default one if none was given), start the
        transfers it asks for; returns the priority applied."""
        chosen = chosen or str(self.state.data["settings"]["default_priority"])
        before = list(self.state.data["transfers"])
        transfers, _ = await self.change(
            lambda s: priority.recovery_finish(s, name, peer, shards, previous, chosen, kind))
        remaining = {TransferKey.of(t) for t in self.state.data["transfers"]}
        for aborted in (t for t in before if TransferKey.of(t) not in remaining):
            reason = f"a replica of shard {aborted['shard_id']} it involves was marked Dead by priority={chosen}"
            self.transfers.event("transfer.aborted", aborted, reason=reason)
            self.transfers.recovery_backoff(aborted["collection"], aborted["shard_id"], aborted["to"])
        for transfer in transfers:
            self.transfers.event("transfer.started", transfer)
            await self.transfers.kick(transfer)
        return chosen
