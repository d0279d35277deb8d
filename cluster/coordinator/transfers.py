"""The transfer lifecycle as the coordinator runs it: start, hand over to the source, record the steps the
source reports, abort, and the backoff before automatic recovery tries a replica again.

A source node drives each transfer (node/replication/source.py). The coordinator registers it (the target
enters Recovery), asks the source to run it (`/internal/transfers/start`), records the steps the source
reports (`progress`, `attempt_failed`, `partial`, `finish`, `abort`) and publishes one `transfer.*` event per
step, right after the `replica.state` events of its state change. The state changes are the pure functions of
operations.py; `Transfers` adds their order, the acks and the backoff. It sees the coordinator's core
(engine.py) through `Core`, so that this module does not import the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import aiohttp

from cluster.coordinator import operations
from cluster.coordinator.auto_recovery import recoveries_stalled
from cluster.coordinator.state import ClusterState
from node import clock as node_clock
from node.eventbus import EventPublisher
from node.protocol import TransferKey, transfer_retry_wait_s
from node.retry import Backoff

log = logging.getLogger("shardsim.coordinator")
T = TypeVar("T")
ReplicaKey = tuple[str, int, int]  # collection, shard, peer


class Core(Protocol):
    """What the transfer lifecycle uses of the coordinator's core (engine.Coordinator)."""

    state: ClusterState
    events: EventPublisher
    session: aiohttp.ClientSession | None
    healthy: set[int]

    @property
    def headers(self) -> dict[str, str]: ...

    def address_for(self, peer_id: int) -> str | None: ...

    async def change(self, mutate: Callable[[ClusterState], T], wait_acks: bool = True) -> tuple[T, int]: ...

    async def acks_wait(self, version: int) -> set[int]: ...

    def peer_failed(self, peer: int) -> None: ...


def event_fields(state: ClusterState, kind: str, transfer: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The fields of a transfer event; retries and aborts carry a rule id and a sentence (teaching mode)."""
    source, target = state.peer_name(transfer["from"]), state.peer_name(transfer["to"])
    fields = {"collection": transfer["collection"], "shard": transfer["shard_id"], "from": transfer["from"],
              "to": transfer["to"], "method": transfer.get("method", "snapshot"), "sync": transfer["sync"],
              "phase": transfer.get("phase"), "bytes": transfer.get("bytes", 0),
              "bytes_total": transfer.get("bytes_total"), "attempt": transfer.get("attempt", 1),
              "queued": transfer.get("queued", 0), "cause": transfer.get("reason"), "stage": transfer.get("stage"),
              "recovery_stage": transfer.get("recovery_stage")}
    fields.update(extra)
    shard, attempt = transfer["shard_id"], transfer.get("attempt", 1)
    if kind == "transfer.aborted":
        fields["rule"] = "transfer.aborted"
        fields["explanation"] = (f"transfer of shard {shard} from {source} to {target} aborted: "
                                 f"{fields.get('reason')}")
    elif kind == "transfer.phase" and transfer.get("phase") == "attempt_failed":
        fields["rule"] = "transfer.retry"
        wait_s = transfer_retry_wait_s(int(attempt))
        then = f"the source retries in {wait_s:g} s" if wait_s is not None else \
            "no attempt left: the transfer will be aborted"
        fields["explanation"] = (f"attempt {attempt} of the transfer of shard {shard} from {source} to "
                                 f"{target} failed ({fields.get('reason')}); {then}")
    elif kind == "transfer.started":
        fields["rule"] = "transfer.start"
        fields["explanation"] = (f"{'replicate' if transfer['sync'] else 'move'} shard {shard} from "
                                 f"{source} to {target} by snapshot streaming ({transfer.get('reason')})")
    return fields


class Transfers:
    """Starts, records and aborts transfers, and keeps the automatic-recovery backoff of each replica."""

    def __init__(self, core: Core, backoff_s_max: float, clock: Callable[[], float] = node_clock.now) -> None:
        self.core = core
        self.backoff = Backoff(first_s=1.0, factor=2.0, max_s=backoff_s_max)
        self.clock = clock
        # per replica: the time before which automatic recovery does not try it again, and failures so far
        self.recovery_not_before: dict[ReplicaKey, float] = {}
        self.recovery_failures: dict[ReplicaKey, int] = {}
        self.boots: dict[int, str] = {}

    async def begin(self, name: str, operation: dict[str, Any], sync: bool, reason: str) -> int:
        """Register a transfer (target -> Recovery), then ask the source node to drive it.

        A user's transfer that is refused raises `OperationError`; an automatic one is logged and dropped. A
        user's transfer first aborts the automatic recoveries of the shard that would refuse it and cannot
        progress (a peer of theirs is down): such a recovery would only fail its attempts meanwhile."""
        if reason == "user":
            await self.stalled_abort(name, operation)
        try:
            transfer, version = await self.core.change(
                lambda s: operations.transfer_start(s, name, operation, sync, reason))
        except operations.OperationError as error:
            if reason == "user":
                raise
            log.info("automatic transfer not started: %s", error.text())
            return self.core.state.version
        self.event("transfer.started", transfer)
        await self.kick(transfer)
        return version

    async def stalled_abort(self, name: str, operation: dict[str, Any]) -> None:
        shard, source, target = (operation.get(k) for k in ("shard_id", "from_peer_id", "to_peer_id"))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (shard, source, target)):
            return  # transfer_start refuses it in Qdrant's words
        assert isinstance(shard, int) and isinstance(source, int) and isinstance(target, int)
        for transfer in recoveries_stalled(self.core.state, name, shard, source, target, self.core.healthy):
            down = sorted({transfer["from"], transfer["to"]} - self.core.healthy)
            names = ", ".join(self.core.state.peer_name(p) for p in down)
            await self.abort(transfer, f"replaced by a user's transfer: it cannot progress while {names} is down")

    async def kick(self, transfer: dict[str, Any]) -> None:
        """Ask the source to drive a registered transfer; abort it if the source refuses or cannot be reached."""
        assert self.core.session is not None
        address = self.core.address_for(transfer["from"])
        try:
            async with self.core.session.post(f"http://{address}/internal/transfers/start", json=transfer,
                                              headers=self.core.headers) as response:
                if response.status == 200:
                    return
                reason = f"source refused to start the transfer (HTTP {response.status})"
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = f"source unreachable through coord->{self.core.state.peer_name(transfer['from'])} ({error})"
        await self.abort(transfer, reason)

    async def abort(self, transfer: dict[str, Any], reason: str) -> bool:
        """Abort the transfer if it is still registered (Qdrant's abort rules, operations.transfer_abort)."""
        key = TransferKey.of(transfer)

        def abort(state: ClusterState) -> dict[str, Any] | None:
            current = state.transfer_find(*key)
            if current is not None:
                operations.transfer_abort(state, current, reason)
            return current
        aborted, _ = await self.core.change(abort)
        if aborted is not None:
            self.event("transfer.aborted", aborted, reason=reason)
            self.recovery_backoff(key.collection, key.shard, key.target)
        return aborted is not None

    async def abort_requested(self, name: str, operation: dict[str, Any]) -> int:
        """`abort_transfer` from a user: 404 if there is no such transfer."""
        transfer = operations.transfer_get(self.core.state, name, operation.get("shard_id"),
                                           operation.get("from_peer_id"), operation.get("to_peer_id"))
        await self.abort(transfer, "aborted by user")
        return self.core.state.version

    async def report(self, step: str, key: TransferKey, fields: dict[str, Any], reason: str | None) -> int:
        """The source reports a step of a transfer it drives: record it, publish it, and for `partial` and
        `finish` wait until the nodes applied the new state."""
        key = TransferKey(*key)
        transfer = self.core.state.transfer_find(*key)
        if transfer is None:
            raise operations.transfer_missing(key.collection, key.shard, key.source, key.target)
        if step == "abort":
            await self.abort(transfer, reason if reason is not None else "transfer failed")
            return self.core.state.version
        if step == "progress":
            # Progress is not part of the versioned state: it changes many times a second while a stream runs,
            # and persisting and pushing each would cost every process CPU the stream needs. It is updated in
            # place, published, and read live by nodes answering cluster info; the next change carries it along.
            operations.transfer_progress(transfer, fields, self.clock())
            self.event("transfer.phase", dict(transfer))
            return self.core.state.version
        updated, version = await self.core.change(
            lambda s: operations.transfer_report(s, key, step, fields, self.clock()), wait_acks=False)
        kind = {"finish": "transfer.finished"}.get(step, "transfer.phase")
        extra = {"reason": reason} if reason is not None else {}
        self.event(kind, updated, **extra)  # right after its replica.state events, in order
        if step == "finish":
            self.recovery_failures.pop((key.collection, key.shard, key.target), None)
        if step in ("partial", "finish"):
            await self.core.acks_wait(version)
        return version

    async def replica_failed(self, name: str, shard: int, peer: int, reason: str, reporter: int | None,
                             ) -> tuple[bool, int]:
        """A forwarded update failed on a replica: it becomes Dead and the transfers it is in are aborted; its
        peer is not re-synced before a later health check finds it up."""
        self.core.peer_failed(peer)
        def fail(state: ClusterState) -> tuple[bool, list[dict[str, Any]]]:
            before = list(state.data["transfers"])
            changed = operations.replica_failed(state, name, shard, peer, reason, reporter)
            remaining = {TransferKey.of(t) for t in state.data["transfers"]}
            return changed, [t for t in before if TransferKey.of(t) not in remaining]
        (changed, aborted), version = await self.core.change(fail, wait_acks=False)
        for transfer in aborted:
            self.event("transfer.aborted", transfer, reason=f"peer {peer} failed an update")
            self.recovery_backoff(transfer["collection"], transfer["shard_id"], transfer["to"])
        return changed, version

    async def peer_booted(self, peer: int, boot_id: str) -> None:
        """A peer restarted: transfers it takes part in are aborted, as Qdrant does."""
        previous = self.boots.get(peer)
        self.boots[peer] = boot_id
        if previous is None or previous == boot_id:
            return
        for transfer in list(self.core.state.data["transfers"]):
            if peer in (transfer["from"], transfer["to"]):
                await self.abort(transfer, f"Source or target peer restarted ({self.core.state.peer_name(peer)})")

    def recovery_backoff(self, name: str, shard: int, target: int) -> None:
        """After an abort, automatic recovery waits before re-syncing this replica: 1 s, doubling to the max."""
        key = (name, shard, target)
        failures = self.recovery_failures.get(key, 0) + 1
        self.recovery_failures[key] = failures
        self.recovery_not_before[key] = self.clock() + self.backoff.wait_s(failures)

    def event(self, kind: str, transfer: dict[str, Any], **extra: Any) -> None:
        self.core.events.publish(kind, **event_fields(self.core.state, kind, transfer, extra))
