"""Wire types and pure codecs shared by nodes and the cluster tooling.

This is the only module of `node/` that `cluster/` may import (besides the event publisher): it holds no
I/O and no state. It defines replica states with Qdrant's names, how a point id maps to a shard, the
content digest of a shard (independent of write order), the msgpack codec used on internal routes, and the shape of
the cluster state that the coordinator pushes to every node.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

QDRANT_API_VERSION = "1.19.0"
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
EMPTY_DIGEST = "0" * 64


def payload_canonical(payload: Mapping[str, Any] | None) -> bytes:
    """Sorted-key compact JSON of a payload (for comparing payloads given as JSON, as checkers do)."""
    if not payload:
        return b"{}"
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_sorted(value: Any) -> Any:
    """A payload with the keys of every object in it sorted (lists keep their order): its canonical form."""
    if type(value) is dict:
        return {key: payload_sorted(value[key]) for key in sorted(value)}
    if type(value) is list:
        return [payload_sorted(item) for item in value]
    return value


def vector_pack(vector: Iterable[float] | bytes) -> bytes:
    """A dense vector as the node stores it: little-endian float32 values (Qdrant stores f32 too)."""
    if isinstance(vector, bytes | bytearray | memoryview):
        return bytes(vector)
    values = list(vector)
    return struct.pack(f"<{len(values)}f", *values)


def vector_unpack(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def sparse_pack(indices: Iterable[int], values: Iterable[float]) -> list[bytes]:
    """A sparse vector as the node stores it: `[indices as u32, values as f32]`, sorted by index (as Qdrant
    keeps them), so the same vector given in any order has the same bytes."""
    pairs = sorted(zip(indices, values, strict=True))
    return [struct.pack(f"<{len(pairs)}I", *(i for i, _ in pairs)),
            struct.pack(f"<{len(pairs)}f", *(v for _, v in pairs))]


def sparse_unpack(data: Sequence[bytes]) -> tuple[list[int], list[float]]:
    indices, values = data
    return list(struct.unpack(f"<{len(indices) // 4}I", indices)), vector_unpack(values)


# A point's vectors in canonical form (`Vectors`): the bytes of its one unnamed dense vector when that is all it
# has (the common case, and format 2's only case), else a map `{name: dense bytes | [indices, values]}` (the
# unnamed vector is the name ""), packed with sorted names.
Vectors = bytes | dict[str, Any]


def vector_one_canonical(value: Any) -> bytes | list[bytes]:
    """One vector (dense or sparse, packed or as JSON gives it) in canonical form."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return sparse_pack(value["indices"], value["values"])
    if isinstance(value, list | tuple) and len(value) == 2 and type(value[0]) is bytes:
        return [bytes(value[0]), bytes(value[1])]  # packed sparse, already in index order
    return vector_pack(value)


def vectors_canonical(vectors: Any) -> Vectors:
    """A point's vectors in canonical form, from any form the node or a checker holds: packed bytes, a list of
    floats (the unnamed vector), or a map of names to dense (bytes or floats) and sparse vectors
    (`{"indices", "values"}` or packed). A map holding only the unnamed dense vector becomes its bytes."""
    if type(vectors) is bytes:
        return vectors
    if not isinstance(vectors, dict):
        return vector_pack(vectors)
    packed = {name: vector_one_canonical(vectors[name]) for name in sorted(vectors)}
    only = packed.get("")
    if len(packed) == 1 and type(only) is bytes:
        return only
    return packed


def point_content(point_id: PointId, vectors: Any, payload: Mapping[str, Any] | None,
                  payload_is_sorted: bool = False) -> bytes:
    """One point's canonical bytes: msgpack `[id, vectors, payload with sorted keys]`, the vectors in their
    canonical form (`vectors_canonical`: every named and sparse vector, names sorted, sparse indices sorted).

    Nodes keep every point in this form and snapshots carry it as is, so the digest below is one SHA-256
    over bytes that are already there (no per-point work to check a snapshot). A point with only an
    unnamed dense vector has the same bytes as in snapshot format 2."""
    data = vectors if type(vectors) is bytes else vectors_canonical(vectors)
    body = (payload or {}) if payload_is_sorted else payload_sorted(dict(payload or {}))
    return msgpack.packb([point_id, data, body], use_bin_type=True)


def ids_sorted(ids: Iterable[PointId]) -> list[PointId]:
    """The canonical order of point ids: integers ascending, then UUID strings ascending."""
    ids = list(ids)
    try:
        return sorted(ids)  # one type (the usual case): one C call
    except TypeError:
        numbers = sorted(point_id for point_id in ids if type(point_id) is int)
        return [*numbers, *sorted(point_id for point_id in ids if type(point_id) is not int)]


def contents_digest(contents: Iterable[bytes | memoryview]) -> str:
    """The digest of a shard from its points' canonical bytes, given in canonical id order."""
    sha = _sha256()
    empty = True
    for data in contents:
        sha.update(data)
        empty = False
    return EMPTY_DIGEST if empty else sha.hexdigest()


def shard_digest(points: Iterable[tuple[PointId, Any, Mapping[str, Any] | None]]) -> str:
    """The content digest of a set of points (id, vectors, payload): SHA-256 of their canonical bytes
    (`point_content`) in canonical id order (`ids_sorted`), so it does not depend on the order in which
    points were written or stored. Two replicas with the same digest hold the same data. Versions are not
    part of it. The empty shard's digest is 64 zeros. Vectors may be given in any form `vectors_canonical`
    takes (a checker passes them as JSON gives them, or as a snapshot's points hold them).
    """
    contents = {point_id: point_content(point_id, vector, payload) for point_id, vector, payload in points}
    return contents_digest(contents[point_id] for point_id in ids_sorted(contents))


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
