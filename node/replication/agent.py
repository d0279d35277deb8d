"""A clustered node's view of the cluster and its part in it.

The agent keeps the newest cluster state pushed by (or pulled from) the coordinator, and reconciles local
storage with it: collections created or deleted, local shards opened for this peer's replicas and removed
when a replica is dropped or moved away. It routes client updates to every replica that takes updates
(acknowledged once `write_consistency_factor` replicas applied them; a replica that fails is reported and
the coordinator marks it Dead), answers reads from Active replicas, and passes cluster operations and
snapshot recoveries to the coordinator, which applies the priority rules. Peer addresses in the state are
this node's proxy listen addresses to them, so every node -> node call crosses its fault-proxy link.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any

import aiohttp

from node import clock
from node.apikey import api_key_headers
from node.errors import ERROR_KINDS, BadInput, NodeError, NotEnoughReplicas, ServiceError, ShardUnavailable
from node.protocol import (
    MSGPACK_CONTENT_TYPE,
    QDRANT_API_VERSION,
    UPDATABLE_STATES,
    ReplicaState,
    TransferKey,
    msgpack_decode,
    msgpack_encode,
    peer_replicas,
    shard_replicas,
)
from node.retry import Backoff, retry
from node.service import Node
from node.snapshots.format import SnapshotContent
from node.snapshots.restore import content_apply
from node.storage.collections import Collection
from node.storage.points import shard_read

log = logging.getLogger("shardsim.node")
COORDINATOR_WAIT_S = 30.0  # how long a starting node waits for the coordinator, trying every 0.5 s
COORDINATOR_WAIT = Backoff.fixed(0.5)
REPORT_ATTEMPTS = 10  # a failed replica is reported this many times at most, waiting 0.2 s, 0.4 s, ... 3 s
REPORT_BACKOFF = Backoff(first_s=0.2, factor=2.0, max_s=3.0)
REPORT_CONFIRM_TIMEOUT_S = 5.0  # an update waits this long for the coordinator to take a failure report
STALE_ROUTINGS = 3  # an update refused as routed by an old state is routed again after a pull, this many times in all
COORDINATOR_CHANGE_TIMEOUT_S = 60.0  # a change waits for the nodes' acks (and, in step mode, for a person)
TRANSFER_INFO_TIMEOUT_S = 1.0  # live transfer comments for cluster info; the view's copy past this
PEER_READY_TIMEOUT_S = 1.0  # telemetry: a peer that does not answer /readyz within this is not responsive


class CoordinatorError(NodeError):
    """The coordinator could not be reached or answered with an unexpected error."""


class ClusterAgent:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self.coordinator_url = str(self.settings.coordinator_url).rstrip("/")
        self.boot_id = clock.token_hex(8)
        self.view: dict[str, Any] = {"version": -1, "peers": {}, "collections": {}, "transfers": [],
                                     "settings": {}}
        self.version_changed = asyncio.Condition()
        self.view_applied_at = clock.now()  # when this node last applied a new state (consensus_thread_status)
        self.drivers: dict[TransferKey, asyncio.Task[Any]] = {}

    # -- lifecycle and state ------------------------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        return api_key_headers(self.settings.api_key, self.settings.alt_api_key)

    async def start(self) -> None:
        address = self.settings.advertise_address or f"{self.settings.host}:{self.settings.port}"

        async def register() -> None:
            await self.coordinator_call("POST", "/internal/peers", {
                "peer_id": self.node.peer_id, "name": self.node.name, "address": address})
            await self.pull()
        await retry(register, timeout_s=COORDINATOR_WAIT_S, backoff=COORDINATOR_WAIT,
                    retry_on=(CoordinatorError, ServiceError),
                    on_failure=lambda attempt, error: log.warning(
                        "coordinator not reachable yet (%s); retrying", error))
        self.node.background(self._pull_loop(), "state-pull")
        for collection, shard in self.node.shards_damaged():  # failed replicas: Dead, then re-synced
            damage = shard.log_damage
            assert damage is not None
            self.replica_report(collection.name, shard.shard_id, self.node.peer_id,
                                f"its write-ahead log is damaged: {damage.text()}")

    async def stop(self) -> None:
        for task in self.drivers.values():
            task.cancel()

    async def _pull_loop(self) -> None:
        while not self.node.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.node.stopping.wait(), self.settings.state_pull_interval_s)
            if self.node.stopping.is_set():
                return
            try:
                await self.pull()
            except NodeError as error:
                log.debug("state pull failed: %s", error.message)

    async def pull(self) -> None:
        query = f"?peer_id={self.node.peer_id}&boot_id={self.boot_id}&version={self.version}"
        view = await self.coordinator_call("GET", f"/internal/state{query}", None)
        await self.state_apply(view)

    @property
    def version(self) -> int:
        return int(self.view["version"])

    async def state_apply(self, view: dict[str, Any]) -> int:
        """Adopt a newer state (older ones are ignored) and reconcile local storage with it."""
        if int(view["version"]) <= self.version:
            return self.version
        self.reconcile(view)
        self.view = view
        self.view_applied_at = clock.now()
        self.node.settings.default_priority = view.get("settings", {}).get(
            "default_priority", self.node.settings.default_priority)
        async with self.version_changed:
            self.version_changed.notify_all()
        return self.version

    async def wait_version(self, version: int, timeout_s: float = 10.0) -> None:
        """Wait until this node applied `version`, pulling it if the push does not come."""
        async def reached() -> None:
            async with self.version_changed:
                await self.version_changed.wait_for(lambda: self.version >= version)
        try:
            await asyncio.wait_for(reached(), 0.5)
        except TimeoutError:
            with contextlib.suppress(NodeError):
                await self.pull()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reached(), timeout_s)

    def reconcile(self, view: dict[str, Any]) -> None:
        storage = self.node.storage
        for name in list(storage.collections):
            if name not in view["collections"]:
                storage.delete(name)
        for name, description in view["collections"].items():
            mine = peer_replicas(view, name, self.node.peer_id)
            collection = storage.collections.get(name)
            if collection is None:
                collection = storage.create(name, description["config"], local_shards=[])
            elif collection.config != description["config"]:
                storage.config_set(collection, description["config"])  # its payload indexes changed
            for shard_id in list(collection.shards):
                if shard_id not in mine:
                    collection.shard_close(shard_id, remove_data=True)
            for shard_id, state in mine.items():
                if shard_id in collection.shards:
                    continue
                existed = collection.shard_directory(shard_id).exists()
                collection.shard_open(shard_id)
                if not existed and state in (ReplicaState.ACTIVE, ReplicaState.PARTIAL):
                    self.replica_report(name, shard_id, self.node.peer_id,
                                        "this peer has no data for a replica the state calls "
                                        f"{state} (its data directory is missing)")

    # -- coordinator calls --------------------------------------------------------------------------------
    async def coordinator_request(self, method: str, path: str, body: dict[str, Any] | None,
                                  timeout_s: float) -> dict[str, Any]:
        """One call to the coordinator: its JSON answer, or its error re-raised as the same node error."""
        session = self.node.session
        assert session is not None
        try:
            async with session.request(method, f"{self.coordinator_url}{path}", json=body, headers=self.headers,
                                       timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            raise CoordinatorError(f"coordinator at {self.coordinator_url} unreachable: {error}") from error
        if response.status >= 400:
            kind = ERROR_KINDS.get(str(data.get("kind")), ServiceError)
            raise kind(str(data.get("message") or data.get("status", {}).get("error")))
        return dict(data)

    async def coordinator_call(self, method: str, path: str, body: dict[str, Any] | None,
                               timeout_s: float | None = None) -> Any:
        """A call whose `result` is wanted (the state route answers the state itself)."""
        data = await self.coordinator_request(method, path, body, timeout_s or self.settings.internal_timeout_s)
        return data if path.startswith("/internal/state") else data.get("result", data)

    async def coordinator_change(self, method: str, path: str, body: dict[str, Any] | None,
                                 timeout_s: float = COORDINATOR_CHANGE_TIMEOUT_S) -> Any:
        """A state-changing call: returns once this node has applied the resulting version."""
        data = await self.coordinator_request(method, path, body, timeout_s)
        await self.wait_version(int(data.get("version", 0)))
        return data.get("result")

    def replica_report(self, name: str, shard_id: int, peer: int, reason: str) -> None:
        """Tell the coordinator a replica failed (in the background, retried a bounded number of times)."""
        async def report() -> None:
            body = {"collection": name, "shard": shard_id, "peer": peer, "reason": reason,
                    "reporter": self.node.peer_id, "state_version": self.version}
            with contextlib.suppress(NodeError):
                await retry(lambda: self.coordinator_call("POST", "/internal/replicas/failed", body),
                            attempts=REPORT_ATTEMPTS, backoff=REPORT_BACKOFF, retry_on=(NodeError,))
        with contextlib.suppress(ServiceError):
            self.node.background(report(), f"report {name}/{shard_id}/{peer}")

    # -- peers ----------------------------------------------------------------------------------------------
    def peer_address(self, peer: int) -> str:
        description = self.view["peers"].get(str(peer))
        if description is None:
            raise ShardUnavailable(f"peer {peer} is not known to this node")
        return str(description["address"])

    def peer_name(self, peer: int) -> str:
        description = self.view["peers"].get(str(peer))
        return str(description["name"]) if description else f"peer {peer}"

    async def peer_call(self, peer: int, path: str, body: Any, timeout_s: float) -> Any:
        """POST msgpack to another node's internal route through this node's proxy link to it."""
        session = self.node.session
        assert session is not None
        url = f"http://{self.peer_address(peer)}{path}"
        headers = {**self.headers, "Content-Type": MSGPACK_CONTENT_TYPE}
        async with session.post(url, data=msgpack_encode(body), headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            data = await response.read()
            if response.status != 200:
                raise ServiceError(f"{self.peer_name(peer)} answered HTTP {response.status}: "
                                   f"{error_text(data)}")
            return msgpack_decode(data)

    def replicas(self, name: str, shard_id: int) -> dict[int, str]:
        return shard_replicas(self.view, name, shard_id)

    # -- updates --------------------------------------------------------------------------------------------
    async def update(self, collection: Collection, operations: dict[int, list[Any]], wait: bool) -> None:
        await asyncio.gather(*(self.shard_update(collection, shard_id, operation, wait)
                               for shard_id, operation in operations.items()))

    def updatable(self, name: str, shard_id: int) -> list[int]:
        """The peers whose replica of the shard takes client updates, in this node's state."""
        return sorted(p for p, st in self.replicas(name, shard_id).items() if st in UPDATABLE_STATES)

    async def shard_update(self, collection: Collection, shard_id: int, operation: list[Any],
                           wait: bool) -> None:
        for routing in range(STALE_ROUTINGS):
            replicas = self.replicas(collection.name, shard_id)
            targets = self.updatable(collection.name, shard_id)
            required = min(int(collection.config.get("write_consistency_factor", 1)), max(len(replicas), 1))
            if len(targets) < required:
                raise NotEnoughReplicas(f"{len(targets)} of {required} required replicas of shard {shard_id} "
                                        f"can take updates ({self.states_text(replicas)})")
            routed = {"state_version": self.version, "targets": targets}
            failures = await asyncio.gather(*(self.replica_apply(collection, shard_id, peer, operation, wait,
                                                                 routed) for peer in targets))
            stale = [failure for failure in failures if isinstance(failure, StaleRouting)]
            if not stale:
                break
            # a replica with a newer state saw replicas taking updates that this node's state left out (the
            # coordinator's push did not reach it yet): nothing was applied there; route again with the
            # coordinator's state (found by the explorer: a target made Active while its own node could not
            # hear the coordinator left itself out of writes it received, and missed them for good)
            if routing == STALE_ROUTINGS - 1:
                for peer in sorted({p for failure in stale for p in failure.missed}):  # they missed what others applied
                    self.replica_report(collection.name, shard_id, peer, f"it missed an update routed by "
                                        f"{self.node.name}'s outdated state")
                raise ServiceError(f"shard {shard_id}: this peer's view of the cluster is behind ({stale[0]}) "
                                   f"and could not be brought up to date; the update may be applied on some "
                                   f"replicas only. Please retry.")
            with contextlib.suppress(NodeError):
                await self.pull()
        results = [failure is None for failure in failures]
        applied = sum(1 for ok in results if ok)
        if applied < required:
            for peer, failure in zip(targets, failures, strict=True):
                if failure is not None:
                    self.replica_report(collection.name, shard_id, peer, failure)
            raise ServiceError(f"only {applied} of {required} required replicas of shard {shard_id} "
                               f"confirmed the update")
        failed = {peer: failure for peer, failure in zip(targets, failures, strict=True) if failure is not None}
        refusal = await self.failures_confirm(collection.name, shard_id, failed, replicas) if failed else None
        if refusal is None and not any(ok and replicas[peer] == ReplicaState.ACTIVE.value
                                       for peer, ok in zip(targets, results, strict=True)):
            # Qdrant's rule: a Partial target alone does not make an update durable, since a failed transfer
            # re-syncs it from an Active replica and its copy is lost (issue 14, transfer torture)
            refusal = f"shard {shard_id}: {self.states_text(replicas)}"
        if refusal is not None:
            await self.appliers_outdate(collection.name, shard_id, [p for p, ok in zip(targets, results, strict=True)
                                                                     if ok])
            raise ServiceError(f"Failed to apply operation to at least one `Active` replica. Consistency of "
                               f"this update is not guaranteed. Please retry. ({refusal})")

    async def failures_confirm(self, name: str, shard_id: int, failed: dict[int, str],
                               replicas: dict[int, str]) -> str | None:
        """Before acknowledging an update some replicas failed: wait until the coordinator took the failure
        reports into account; why the acknowledgement must be refused if no replica that applied the update
        is still Active (else None). Otherwise a symmetric partition loses it: both sides report each other,
        the coordinator marks the first reported Dead and refuses the second (never the last Active replica),
        and the side marked Dead acknowledged a write that its re-sync then erases (found by the explorer:
        scenarios/found/symmetric_partition_write.py)."""
        answered = await asyncio.gather(*(self.replica_failure_confirm(name, shard_id, peer, reason)
                                          for peer, reason in failed.items()))
        now = self.replicas(name, shard_id)
        still_active = [p for p, st in replicas.items() if p not in failed and st == ReplicaState.ACTIVE.value
                        and now.get(p) == ReplicaState.ACTIVE.value]
        if all(answered) and still_active:
            return None
        return (f"shard {shard_id}: the failure of {', '.join(self.peer_name(p) for p in failed)} was "
                f"{'taken' if all(answered) else 'not yet taken'} into account; now {self.states_text(now)}")

    async def appliers_outdate(self, name: str, shard_id: int, appliers: list[int]) -> None:
        """An update refused after some replicas applied it: those still taking updates but not Active (a
        transfer's Partial target) now hold what no Active replica holds, and would become Active with it when
        their transfer finishes. They are reported failed (the transfer is aborted and they are re-synced), so
        that the replicas converge (found by the explorer: scenarios/found/partial_target_kept_refused_write.py)."""
        now = self.replicas(name, shard_id)
        outdated = [p for p in appliers if now.get(p) in UPDATABLE_STATES and now.get(p) != ReplicaState.ACTIVE.value]
        await asyncio.gather(*(self.replica_failure_confirm(name, shard_id, peer, "it applied an update that no "
                                                            "Active replica applied") for peer in outdated))

    async def replica_failure_confirm(self, name: str, shard_id: int, peer: int, reason: str) -> bool:
        """Report a failed replica and wait until this node applied the coordinator's answer; False if the
        coordinator could not be told in time (a background report keeps trying)."""
        body = {"collection": name, "shard": shard_id, "peer": peer, "reason": reason,
                "reporter": self.node.peer_id, "state_version": self.version}
        try:
            data = await self.coordinator_request("POST", "/internal/replicas/failed", body,
                                                  REPORT_CONFIRM_TIMEOUT_S)
        except NodeError:
            self.replica_report(name, shard_id, peer, reason)
            return False
        await self.wait_version(int(data.get("version", 0)), REPORT_CONFIRM_TIMEOUT_S)
        return True

    def states_text(self, replicas: dict[int, str]) -> str:
        return ", ".join(f"{self.peer_name(p)}: {st}" for p, st in sorted(replicas.items()))

    async def replica_apply(self, collection: Collection, shard_id: int, peer: int, operation: list[Any],
                            wait: bool, routed: dict[str, Any] | None = None) -> str | None:
        """Apply the update on one replica: None if it did, else why not (the caller reports the failure), or
        a `StaleRouting` if the peer's newer state has replicas taking updates that `routed` left out."""
        if peer == self.node.peer_id:
            shard = collection.shards.get(shard_id)
            if shard is None:
                return "the shard is not on this node"
            await shard.apply(operation, durable=wait)
            return None
        path = f"/internal/collections/{collection.name}/shards/{shard_id}/apply"
        try:
            answer = await self.peer_call(peer, path, {"ops": [operation], "durable": wait, **(routed or {})},
                                          self.settings.forward_timeout_s)
            if isinstance(answer, dict) and answer.get("stale"):
                stale = StaleRouting(f"{self.peer_name(peer)} has a newer state, in which "
                                     f"{', '.join(self.peer_name(p) for p in answer['stale'])} also take updates")
                stale.missed = tuple(int(p) for p in answer["stale"])
                return stale
            return None
        except (aiohttp.ClientError, TimeoutError, OSError, NodeError) as error:
            return describe_failure(error, f"{self.node.name}->{self.peer_name(peer)}")

    # -- reads ----------------------------------------------------------------------------------------------
    async def read(self, collection: Collection, request: dict[str, Any]) -> list[Any]:
        return list(await asyncio.gather(*(self.shard_read(collection, shard_id, request)
                                           for shard_id in range(collection.shard_number))))

    async def shard_read(self, collection: Collection, shard_id: int, request: dict[str, Any]) -> Any:
        replicas = self.replicas(collection.name, shard_id)
        active = [p for p, st in sorted(replicas.items()) if st == ReplicaState.ACTIVE]
        if self.node.peer_id in active and shard_id in collection.shards:
            return shard_read(collection.shards[shard_id], request)
        errors = []
        for peer in active:
            try:
                return await self.peer_call(peer, f"/internal/collections/{collection.name}/shards/{shard_id}"
                                            f"/read", request, self.settings.forward_timeout_s)
            except (aiohttp.ClientError, TimeoutError, OSError, NodeError) as error:
                errors.append(describe_failure(error, f"{self.node.name}->{self.peer_name(peer)}"))
        raise ShardUnavailable(f"No active replica of shard {shard_id} of `{collection.name}` could answer "
                               f"({'; '.join(errors) or self.states_text(replicas)})")

    # -- collections and cluster operations ------------------------------------------------------------------
    async def collection_create(self, name: str, config: dict[str, Any]) -> None:
        await self.coordinator_change("POST", f"/internal/collections/{name}", {"config": config})

    async def collection_delete(self, name: str) -> None:
        await self.coordinator_change("DELETE", f"/internal/collections/{name}", None)

    async def collection_operation(self, collection: Collection, body: dict[str, Any],
                                   timeout_s: float | None) -> bool:
        """Pass a cluster operation to the coordinator; `true` once this node has applied the new state.

        `timeout_s` is Qdrant's `?timeout=` (seconds to wait for the operation to be applied; none or not
        positive: 60 s). Past it the answer is a service error, and, as in Qdrant, the operation is not
        withdrawn: the coordinator may still apply it (for example once a person lets a held step go on).
        """
        await self.change_within(f"the cluster operation on {collection.name}", "POST",
                                 f"/internal/collections/{collection.name}/cluster", body, timeout_s)
        return True

    async def peers_health(self) -> dict[str, Any]:
        """`{peer: {"healthy", "version"}}` as the coordinator last saw them; empty if it cannot answer."""
        with contextlib.suppress(NodeError):
            return dict(await self.coordinator_call("GET", "/internal/peers", None, TRANSFER_INFO_TIMEOUT_S))
        return {}

    def leader(self, health: dict[str, Any]) -> int | None:
        """The peer shown as Raft leader: the lowest peer id the coordinator finds healthy (all peers of the
        state when it cannot say), so a killed leader is "re-elected" (docs/cluster.md section 3)."""
        peers = sorted(int(p) for p in self.view["peers"])
        healthy = [p for p in peers if health.get(str(p), {}).get("healthy")] if health else peers
        chosen = healthy or peers
        return chosen[0] if chosen else None

    def raft_info(self, health: dict[str, Any]) -> dict[str, Any]:
        """Qdrant's `raft_info` mapped from the coordinator's state: `commit` is the state version this node
        applied (equal on every node once a change reached them all), `term` 1 (there is one coordinator),
        `leader` the designated peer, nothing pending (the coordinator applies each change whole)."""
        leader = self.leader(health)
        return {"term": 1, "commit": self.version, "pending_operations": 0, "leader": leader,
                "role": "Leader" if leader == self.node.peer_id else "Follower", "is_voter": True}

    def consensus_thread_status(self) -> dict[str, Any]:
        stamp = dt.datetime.fromtimestamp(self.view_applied_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"consensus_thread_status": "working", "last_update": stamp}

    async def cluster_status(self) -> dict[str, Any]:
        peers = {str(p): {"uri": f"http://{d['address']}/"} for p, d in self.view["peers"].items()}
        return {"status": "enabled", "peer_id": self.node.peer_id, "peers": peers,
                "raft_info": self.raft_info(await self.peers_health()),
                "consensus_thread_status": self.consensus_thread_status(), "message_send_failures": {}}

    async def live_state(self) -> dict[str, Any]:
        """The coordinator's state now (transfer comments as of now); this node's view if it cannot answer."""
        with contextlib.suppress(NodeError):
            return dict(await self.coordinator_call("GET", "/internal/state", None, TRANSFER_INFO_TIMEOUT_S))
        return self.view

    async def cluster_telemetry(self, details_level: int) -> dict[str, Any]:
        """Qdrant's distributed telemetry (`GET /cluster/telemetry`) from the coordinator's state: peers (each
        responsive if it answers `/readyz` through this node's link to it, with the state version it applied
        as `commit`), every collection's shards with their replicas (points counted for this node's own), and
        its transfers."""
        state = await self.live_state()
        health = await self.peers_health()
        leader = self.leader(health)
        peer_ids = sorted(self.view["peers"], key=int)
        answered = await asyncio.gather(*(self.peer_responsive(int(peer)) for peer in peer_ids))
        peers = {}
        for peer, responsive in zip(peer_ids, answered, strict=True):
            description, seen = self.view["peers"][peer], health.get(peer, {})
            details = {"version": QDRANT_API_VERSION, "role": "Leader" if int(peer) == leader else "Follower",
                       "is_voter": True, "term": 1, "commit": seen.get("version") or 0,
                       "num_pending_operations": 0,
                       "consensus_thread_status": self.consensus_thread_status()}
            peers[peer] = {"uri": f"http://{description['address']}/", "responsive": responsive,
                           "details": details if responsive else None}
        collections = {}
        for name, description in sorted(state.get("collections", {}).items()):
            collection = self.node.storage.collections.get(name)
            shards = []
            for shard_key, replicas in sorted(description["shards"].items(), key=lambda item: int(item[0])):
                listed = []
                for peer, replica_state in sorted(replicas.items(), key=lambda item: int(item[0])):
                    replica: dict[str, Any] = {"peer_id": int(peer), "state": replica_state}
                    local = collection.shards.get(int(shard_key)) if collection is not None else None
                    if int(peer) == self.node.peer_id and local is not None:
                        replica.update(status="green", num_points=len(local.points))
                    listed.append(replica)
                shards.append({"id": int(shard_key), "replicas": listed})
            entry: dict[str, Any] = {"id": name, "shards": shards}
            transfers = [transfer_info(t) for t in state.get("transfers", []) if t["collection"] == name]
            if transfers:
                entry["shard_transfers"] = transfers
            collections[name] = entry
        return {"collections": collections,
                "cluster": {"enabled": True, "number_of_peers": len(peers), "peers": peers}}

    async def peer_responsive(self, peer: int) -> bool:
        """Whether a peer answers `/readyz` now, through this node's link to it (this node: yes)."""
        if peer == self.node.peer_id:
            return True
        session = self.node.session
        assert session is not None
        try:
            async with session.get(f"http://{self.peer_address(peer)}/readyz", headers=self.headers,
                                   timeout=aiohttp.ClientTimeout(total=PEER_READY_TIMEOUT_S)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError, NodeError):
            return False

    async def recover(self) -> None:
        await self.pull()

    async def peer_remove(self, peer_id: int, force: bool, timeout_s: float | None) -> None:
        query = "?force=true" if force else ""
        await self.change_within(f"removing peer {peer_id}", "DELETE", f"/internal/peers/{peer_id}{query}", None,
                                 timeout_s)

    async def payload_index_change(self, collection: Collection, field: str, schema: Any | None) -> None:
        path = f"/internal/collections/{collection.name}/index"
        body = {"field_name": field, "field_schema": schema}
        await self.coordinator_change("PUT" if schema is not None else "DELETE", path, body)

    async def change_within(self, what: str, method: str, path: str, body: dict[str, Any] | None,
                            timeout_s: float | None) -> None:
        """A change applied through the coordinator, waited for at most Qdrant's `?timeout=` seconds (none or
        not positive: 60 s); past it a service error, the change not withdrawn."""
        wait_s = timeout_s if timeout_s is not None and timeout_s > 0 else COORDINATOR_CHANGE_TIMEOUT_S
        try:
            async with asyncio.timeout(wait_s):  # the HTTP call's own limit is never shorter than this
                await self.coordinator_change(method, path, body, max(wait_s, COORDINATOR_CHANGE_TIMEOUT_S))
        except TimeoutError:
            raise ServiceError(f"Waiting for {what} failed: not applied within the timeout of {wait_s:g} s") \
                from None

    async def collection_cluster_info(self, collection: Collection) -> dict[str, Any]:
        """Qdrant's collection cluster info. The transfers' comments (phase, bytes streamed) are read from the
        coordinator, which keeps progress out of the versioned state it pushes (the view's copy when the
        coordinator cannot be reached)."""
        transfers_known = [t for t in self.view["transfers"] if t["collection"] == collection.name]
        if transfers_known:
            with contextlib.suppress(NodeError):
                state = await self.coordinator_call("GET", "/internal/state", None, TRANSFER_INFO_TIMEOUT_S)
                transfers_known = [t for t in state.get("transfers", []) if t["collection"] == collection.name]
        local, remote = [], []
        for shard_id in range(collection.shard_number):
            for peer, state in sorted(self.replicas(collection.name, shard_id).items()):
                if peer == self.node.peer_id:
                    shard = collection.shards.get(shard_id)
                    local.append({"shard_id": shard_id, "points_count": len(shard.points) if shard else 0,
                                  "state": state})
                else:
                    remote.append({"shard_id": shard_id, "peer_id": peer, "state": state})
        transfers = [transfer_info(t) for t in transfers_known]
        return {"peer_id": self.node.peer_id, "shard_count": collection.shard_number, "local_shards": local,
                "remote_shards": remote, "shard_transfers": transfers}

    # -- snapshot recovery under the priority rules ----------------------------------------------------------
    async def collection_recover(self, collection: Collection, content: SnapshotContent, priority: str) -> None:
        """As Qdrant: this peer's replicas go to ManualRecovery, a replica is created (ManualRecovery) for each
        shard the snapshot holds data for and this peer has none of, the data is swapped in, and the
        coordinator applies the priority to the shards with data (the others get their state back)."""
        mine = sorted(peer_replicas(self.view, collection.name, self.node.peer_id))
        added = sorted(s for s in content.shards if s not in mine and 0 <= s < collection.shard_number)
        with_data = sorted(s for s in [*mine, *added] if s in content.shards)
        body = {"collection": collection.name, "peer": self.node.peer_id, "shards": mine, "added": added}
        previous = await self.coordinator_change("POST", "/internal/recovery/begin", body)
        try:
            await content_apply(self.node, collection, content, with_data)
        except BaseException as error:
            with contextlib.suppress(NodeError):
                await self.coordinator_change("POST", "/internal/recovery/abort",
                                              {**body, "previous": previous, "reason": str(error)})
            raise
        if with_data and self.settings.snapshot_recovery_delay_s > 0:  # Qdrant's staging knob: observe the state
            await asyncio.sleep(self.settings.snapshot_recovery_delay_s)
        await self.coordinator_change("POST", "/internal/recovery/finish", {
            **body, "shards": with_data, "previous": previous, "priority": priority, "kind": "collection"})

    async def shard_recover(self, collection: Collection, shard_id: int, content: SnapshotContent,
                            priority: str) -> None:
        # the replica map says whether this peer holds the shard: `collection.shards` lacks it for a moment
        # while another restore (a transfer's) swaps its data in a worker thread
        if shard_id not in peer_replicas(self.view, collection.name, self.node.peer_id):
            raise BadInput(f"Shard {shard_id} is not a local or queue proxy shard")
        await content_apply(self.node, collection, content, [shard_id])
        await self.coordinator_change("POST", "/internal/recovery/finish", {
            "collection": collection.name, "peer": self.node.peer_id, "shards": [shard_id],
            "priority": priority, "kind": "shard"})


class StaleRouting(str):
    """Why a peer refused an update routed by an older state than its own (nothing was applied there), and
    the replicas taking updates in that state that the routing left out (`missed`)."""

    missed: tuple[int, ...] = ()


def transfer_info(transfer: dict[str, Any]) -> dict[str, Any]:
    """A transfer as Qdrant describes it (`ShardTransferInfo`)."""
    return {"shard_id": transfer["shard_id"], "from": transfer["from"], "to": transfer["to"],
            "sync": transfer["sync"], "method": transfer.get("method", "snapshot"), "comment": transfer.get("comment")}


def error_text(data: bytes) -> str:
    """The error sentence of a node's answer (Qdrant's envelope), or the start of its raw body."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        return str(json.loads(data)["status"]["error"])
    return data[:200].decode(errors="replace")


def describe_failure(error: BaseException, link: str) -> str:
    if isinstance(error, NodeError):
        return f"{error.message} (through {link})"
    if isinstance(error, TimeoutError):
        return f"timed out through {link}"
    if isinstance(error, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return f"connection refused through {link}"
    return f"{type(error).__name__}: {error} (through {link})"
