"""Wire types and pure codecs shared by nodes and the cluster tooling.

This is the only module of `node/` that `cluster/` may import (besides the event publisher): it holds no
I/O and no state. It defines replica states with Qdrant's names, how a point id maps to a shard, the
order-independent content digest of a shard, the msgpack codec used on internal routes, and the shape of
the cluster state that the coordinator pushes to every node.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

QDRANT_API_VERSION = "1.19.0"
DIGEST_MODULUS = 1 << 256
MSGPACK_CONTENT_TYPE = "application/msgpack"

PointId = int | str


class ReplicaState(enum.StrEnum):
    """Qdrant's replica states (JSON names are PascalCase), reference section 4."""

    ACTIVE = "Active"
    DEAD = "Dead"
    PARTIAL = "Partial"
    INITIALIZING = "Initializing"
    LISTENER = "Listener"
    RECOVERY = "Recovery"
    MANUAL_RECOVERY = "ManualRecovery"

    @property
    def takes_updates(self) -> bool:
        """Forwarded writes go to these replicas (Recovery targets are fed by the transfer queue)."""
        return self in (ReplicaState.ACTIVE, ReplicaState.PARTIAL, ReplicaState.INITIALIZING,
                        ReplicaState.LISTENER)

    @property
    def serves_reads(self) -> bool:
        return self is ReplicaState.ACTIVE


class SnapshotPriority(enum.StrEnum):
    NO_SYNC = "no_sync"
    SNAPSHOT = "snapshot"
    REPLICA = "replica"


def point_id_normalize(point_id: Any) -> PointId:
    """Return the canonical form of a point id: a non-negative int, or a lowercase hyphenated UUID.

    Raises ValueError for anything else (the caller turns it into a 400 in Qdrant's words).
    """
    if isinstance(point_id, bool):
        raise ValueError(f"Unable to parse point id {point_id!r}")
    if isinstance(point_id, int):
        if point_id < 0 or point_id >= 1 << 64:
            raise ValueError(f"Unable to parse point id {point_id}: must be an unsigned 64-bit integer")
        return point_id
    if isinstance(point_id, str):
        if point_id.isdigit():
            return int(point_id)
        try:
            return str(uuid.UUID(point_id))
        except ValueError:
            raise ValueError(f"Unable to parse UUID: {point_id}") from None
    raise ValueError(f"Unable to parse point id {point_id!r}")


def shard_for_point(point_id: PointId, shard_number: int) -> int:
    """The shard a point lives in: a stable hash of its canonical id, the same on every node and run."""
    assert shard_number >= 1
    key = f"u:{point_id}" if isinstance(point_id, int) else f"s:{point_id}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_number


_sha256 = hashlib.sha256
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_canonical(payload: Mapping[str, Any] | None) -> bytes:
    """Sorted-key compact JSON of a payload (one shared encoder: the C fast path, no per-call setup)."""
    if not payload:
        return b"{}"
    return _CANONICAL_JSON.encode(payload).encode()


def vector_pack(vector: Iterable[float] | bytes) -> bytes:
    """A vector as the node stores it: little-endian float32 values (Qdrant stores f32 too)."""
    if isinstance(vector, bytes | bytearray | memoryview):
        return bytes(vector)
    values = list(vector)
    return struct.pack(f"<{len(values)}f", *values)


def vector_unpack(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def point_hash(point_id: PointId, vector: Iterable[float] | bytes, payload: Mapping[str, Any] | None) -> int:
    """The hash of one point's content; the shard digest is the sum of these modulo 2**256.

    SHA-256 of `"{type}:{id}"`, the float32 vector bytes, a zero byte and the canonical payload JSON. The vector
    is hashed as float32, as stored, so a vector given as JSON floats and the stored copy agree.
    """
    key = f"int:{point_id}" if type(point_id) is int else f"{type(point_id).__name__}:{point_id}"
    data = vector if type(vector) is bytes else vector_pack(vector)
    content = b"".join((key.encode(), data, b"\x00", payload_canonical(payload)))
    return int.from_bytes(_sha256(content).digest(), "big")


def digest_hex(digest_sum: int) -> str:
    return f"{digest_sum % DIGEST_MODULUS:064x}"


def shard_digest(points: Iterable[tuple[PointId, Iterable[float] | bytes, Mapping[str, Any] | None]]) -> str:
    """Order-independent content digest of a set of points (id, vector, payload).

    Two replicas with the same digest hold the same data. The empty shard's digest is 64 zeros.
    """
    total = 0
    for point_id, vector, payload in points:
        total += point_hash(point_id, vector, payload)
    return digest_hex(total)


def msgpack_encode(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def msgpack_decode(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# ---------------------------------------------------------------------------------------------------------
# Cluster state, as the coordinator pushes it to nodes (msgpack or JSON, plain dicts on the wire).
#
# {
#   "version": int,                       # grows by one with every change
#   "peers": {"1": {"peer_id": 1, "name": "n1", "address": "127.0.0.1:7001"}},   # address as seen by the
#                                         # receiving node: the listen address of its proxy to that peer
#   "collections": {"c": {"config": {...collection config...},
#                         "shards": {"0": {"1": "Active", "2": "Dead"}}}},       # shard -> peer -> state
#   "transfers": [{"collection", "shard_id", "from", "to", "sync", "method", "phase", "bytes",
#                  "bytes_total", "attempt", "comment"}],
#   "settings": {"default_priority": "replica", ...},
# }
# ---------------------------------------------------------------------------------------------------------


def replica_map(state: Mapping[str, Any], collection: str) -> dict[int, dict[int, ReplicaState]]:
    """`shard -> peer -> state` of one collection in a pushed cluster state (int keys, enum values)."""
    shards = state.get("collections", {}).get(collection, {}).get("shards", {})
    return {int(shard): {int(peer): ReplicaState(st) for peer, st in peers.items()}
            for shard, peers in shards.items()}
