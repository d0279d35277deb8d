"""What the node sees of its cluster agent: a typed seam, so that the node, its routes and snapshot recovery
call the agent without importing it (the agent imports them: `node.service` never imports replication).

`node.replication.agent.ClusterAgent` is the one implementation; a standalone node has none.
"""

from __future__ import annotations

from typing import Any, Protocol

from node.snapshots.format import SnapshotContent
from node.storage.collections import Collection


class ClusterSeam(Protocol):
    """The calls a clustered node makes on its part in the cluster."""

    async def start(self) -> None:
        """Register with the coordinator and take the first state (bounded by a deadline)."""

    async def stop(self) -> None:
        """Cancel the transfers this node drives; their tasks, like the agent's other background work, belong
        to the node's TaskGroup, which awaits them."""

    async def update(self, collection: Collection, operations: dict[int, list[Any]], wait: bool) -> None:
        """Apply one client update (one operation per shard) on every replica that takes updates."""

    async def read(self, collection: Collection, request: dict[str, Any]) -> list[Any]:
        """One read on every shard, answered by an Active replica; a list of per-shard results."""

    async def collection_create(self, name: str, config: dict[str, Any]) -> None: ...

    async def collection_delete(self, name: str) -> None: ...

    async def collection_operation(self, collection: Collection, body: dict[str, Any],
                                   timeout_s: float | None) -> bool:
        """A cluster operation (`move_shard`, `replicate_shard`, ...) passed to the coordinator; waits at most
        `timeout_s` (Qdrant's `?timeout=`) for it to be applied."""

    async def cluster_status(self) -> dict[str, Any]:
        """`GET /cluster` in Qdrant's shape."""

    async def cluster_telemetry(self, details_level: int) -> dict[str, Any]:
        """`GET /cluster/telemetry` in Qdrant's shape."""

    async def recover(self) -> None:
        """`POST /cluster/recover`: pull the whole cluster state again."""

    async def peer_remove(self, peer_id: int, force: bool, timeout_s: float | None) -> None:
        """`DELETE /cluster/peer/{peer_id}`, passed to the coordinator; waits at most `timeout_s`."""

    async def payload_index_change(self, collection: Collection, field: str, schema: Any | None) -> None:
        """Create (`schema` given) or delete a payload index on every node (through the coordinator)."""

    async def collection_cluster_info(self, collection: Collection) -> dict[str, Any]:
        """`GET /collections/{c}/cluster` in Qdrant's shape."""

    async def collection_recover(self, collection: Collection, content: SnapshotContent, priority: str) -> None:
        """Swap in a collection snapshot's shards under the priority rules (the coordinator decides)."""

    async def shard_recover(self, collection: Collection, shard_id: int, content: SnapshotContent,
                            priority: str) -> None:
        """Swap in one shard snapshot under the priority rules."""
