"""The node as one object: storage, identity, events, the HTTP client, and the cluster agent.

Route handlers (node/api/) call this object; it decides whether an update or a read is served locally
(standalone, or a local replica) or through the cluster agent, which forwards to other peers. The node sees
its agent only through `node.replication.seam.ClusterSeam` (the app builder plugs the agent in), so this
module never imports replication's agent. Its lifecycle is an async context manager owned by the aiohttp
app's cleanup context, and it owns every background task (compaction, state pulls, failure reports,
transfers, snapshot work answered with 202) in one TaskGroup; a task that needs helpers of its own (a
transfer's progress reporter and queue watcher) owns them in a TaskGroup of its own, inside its block, and
the event publisher owns its sender the same way. `LockKey` names the node's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp

from node import logs
from node.errors import ServiceError
from node.eventbus import EventPublisher
from node.replication.seam import ClusterSeam
from node.settings import NodeSettings
from node.snapshots.files import partials_clean
from node.storage.collections import Collection, Storage
from node.storage.operations import operation_check
from node.storage.points import shard_read
from node.storage.shard import Shard, version_clock

log = logging.getLogger("shardsim.node")


class LockPurpose(enum.Enum):
    """What a node-local lock serialises; part of its key, so locks of different purposes never collide."""

    SHARD_DATA = "shard data"  # swapping a shard's data in (snapshot content applied)
    SHARD_RECOVERY = "shard recovery"  # one shard snapshot recovery of a shard at a time
    COLLECTION_RECOVERY = "collection recovery"  # one collection snapshot recovery of a collection at a time
    TRANSFER_RECEIVE = "transfer receive"  # a transfer target swapping in the streamed shard


class LockKey(NamedTuple):
    """The key of one of the node's locks: a collection, a shard (None for the whole collection), a purpose."""

    collection: str
    shard: int | None
    purpose: LockPurpose

    @classmethod
    def shard_data(cls, collection: str, shard: int) -> LockKey:
        return cls(collection, shard, LockPurpose.SHARD_DATA)

    @classmethod
    def shard_recovery(cls, collection: str, shard: int) -> LockKey:
        return cls(collection, shard, LockPurpose.SHARD_RECOVERY)

    @classmethod
    def collection_recovery(cls, collection: str) -> LockKey:
        return cls(collection, None, LockPurpose.COLLECTION_RECOVERY)

    @classmethod
    def transfer_receive(cls, collection: str, shard: int) -> LockKey:
        return cls(collection, shard, LockPurpose.TRANSFER_RECEIVE)


class Node:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.storage = Storage(settings.data_dir)
        self.peer_id = self.storage.identity(settings.peer_id)
        self.name = settings.name or f"peer-{self.peer_id}"
        self.events = EventPublisher(settings.mqtt_url, settings.cluster_name, f"node/{self.peer_id}")
        self.session: aiohttp.ClientSession | None = None
        self.tasks: asyncio.TaskGroup | None = None
        self.owned_tasks: dict[asyncio.Task[Any], None] = {}  # an insertion-ordered set: cancelled in start order
        self.locks: dict[LockKey, asyncio.Lock] = {}
        self.version_last = 0
        self.ready = False
        self.stopping = asyncio.Event()
        self.cluster: ClusterSeam | None = None  # plugged in by the app builder in cluster mode

    # -- lifecycle ----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        logs.host_set(self.name)  # lines logged by this node's tasks say which host it is (node/logs.py)
        self.storage.load(all_shards_local=not self.settings.clustered)
        partials_clean(self.settings.snapshots_dir)
        self.settings.snapshots_dir.mkdir(parents=True, exist_ok=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        async with self.events, aiohttp.ClientSession(timeout=timeout) as session, \
                asyncio.TaskGroup() as tasks:
            self.session, self.tasks = session, tasks
            tasks.create_task(self._compaction_loop(), name="compaction")
            if self.cluster is not None:
                await self.cluster.start()
            self.ready = True
            self.events.publish("node.started", peer_id=self.peer_id, name=self.name,
                                address=f"{self.settings.host}:{self.settings.port}")
            self.log_damage_announce()
            try:
                yield self
            finally:
                self.ready = False
                self.stopping.set()
                self.events.publish("node.stopped", peer_id=self.peer_id, name=self.name,
                                    address=f"{self.settings.host}:{self.settings.port}")
                if self.cluster is not None:
                    await self.cluster.stop()
                for task in list(self.owned_tasks):
                    task.cancel()
        self.storage.close()

    def shards_damaged(self) -> list[tuple[Collection, Shard]]:
        """Local shards whose log held a damaged record: each kept what it had up to it and needs recovery."""
        return [(collection, shard) for collection in self.storage.collections.values()
                for shard in collection.shards.values() if shard.log_damage is not None]

    def log_damage_announce(self) -> None:
        """Say in the log and on the bus which shards lost records to a damaged log (a clustered node also
        reports them to the coordinator as failed replicas, so that they are re-synced)."""
        for collection, shard in self.shards_damaged():
            damage = shard.log_damage
            assert damage is not None
            log.error("shard %s of collection `%s` needs recovery: its write-ahead log holds a record that cannot "
                      "be applied, in %s at offset %d (%s); the shard keeps what it had up to that record, the "
                      "damaged segments are kept aside as *.damaged", shard.shard_id, collection.name, damage.path,
                      damage.offset, damage.reason)
            self.events.publish("shard.log_corrupt", collection=collection.name, shard=shard.shard_id,
                                peer=self.peer_id, file=str(damage.path), offset=damage.offset, reason=damage.reason)

    async def _compaction_loop(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.compaction_interval_s)
            if self.stopping.is_set():
                return
            for collection in list(self.storage.collections.values()):
                for shard in list(collection.shards.values()):
                    if shard.wal is not None and shard.wal.size_bytes > self.settings.compaction_wal_bytes:
                        try:
                            await shard.compact()
                        except OSError as error:
                            log.error("compaction of %s/%s failed: %s", collection.name, shard.shard_id, error)

    def background(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        """Start a task owned by the node's TaskGroup (it is cancelled when the node stops)."""
        if self.tasks is None or self.stopping.is_set():
            coroutine.close()
            raise ServiceError("node is not running")
        task = self.tasks.create_task(_guarded(coroutine, name), name=f"node:{name}")
        self.owned_tasks[task] = None
        task.add_done_callback(lambda done: self.owned_tasks.pop(done, None))
        return task

    def lock(self, key: LockKey) -> asyncio.Lock:
        """The node-local lock named by `key` (made on first use)."""
        return self.locks.setdefault(key, asyncio.Lock())

    def version_next(self) -> int:
        """A write version above every version this node has handed out (see node/storage/shard.py)."""
        self.version_last = max(self.version_last + (1 << 12), version_clock(self.peer_id))
        return self.version_last

    # -- data ---------------------------------------------------------------------------------------------
    async def update(self, collection: Collection, operations: dict[int, list[Any]], wait: bool) -> int:
        """Apply one client update (one operation per shard); returns an operation id."""
        version = self.version_next()
        for operation in operations.values():
            operation.insert(1, version)
            operation_check(operation, collection.schema)  # all shards' operations before any is applied
        if self.cluster is not None:
            await self.cluster.update(collection, operations, wait)
            return version
        results = [collection.shard_local(shard_id).apply(operation, durable=wait)
                   for shard_id, operation in operations.items()]
        await asyncio.gather(*results)
        return version

    async def read(self, collection: Collection, request: dict[str, Any]) -> list[Any]:
        """One read on every shard of the collection; a list of per-shard results."""
        if self.cluster is not None:
            return await self.cluster.read(collection, request)
        return [shard_read(collection.shards[shard_id], request) for shard_id in sorted(collection.shards)]


async def _guarded(coroutine: Any, name: str) -> Any:
    """Background tasks log their failure instead of tearing down the node's TaskGroup."""
    try:
        return await coroutine
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed", name)
        return None
