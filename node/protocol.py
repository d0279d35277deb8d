"""Wire types and pure codecs shared by nodes and the cluster tooling.

This is the only module of `node/` that `cluster/` may import for the cluster's vocabulary (besides the event
publisher and `node.retry`): it holds no I/O and no state. It defines, once for the node, the coordinator, the
runner, the launcher, the checkers and the tests: replica states with Qdrant's names and the set that takes
updates, the snapshot priorities and the default one, a transfer's key and its retry waits, how a point id
maps to a shard, the content digest of a shard (independent of write order), the msgpack codec used on
internal routes, and the shape of the cluster state that the coordinator pushes to every node, with the
helpers that read its replica map.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgpack

QDRANT_API_VERSION = "1.19.0"
MSGPACK_CONTENT_TYPE = "application/msgpack"

PointId = int | str


class ReplicaState(enum.StrEnum):
    """Qdrant's replica states (JSON names are PascalCase), docs/qdrant-semantics.md section 4."""

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
        return self.value in UPDATABLE_STATES


UPDATABLE_STATES: frozenset[str] = frozenset({ReplicaState.ACTIVE.value, ReplicaState.PARTIAL.value,
                                              ReplicaState.INITIALIZING.value, ReplicaState.LISTENER.value})
"""The states of replicas that take updates: a client update goes to each, and a replica in one of them is
"present" on its peer (a transfer to it is refused). Recovery targets are fed by the transfer's queue."""


class SnapshotPriority(enum.StrEnum):
    """Which side wins when a snapshot is recovered into a shard that has other replicas (reference
    section 3)."""

    NO_SYNC = "no_sync"
    SNAPSHOT = "snapshot"
    REPLICA = "replica"


PRIORITIES: tuple[str, ...] = tuple(priority.value for priority in SnapshotPriority)
PRIORITY_DEFAULT: str = SnapshotPriority.REPLICA.value
"""The priority of a recovery that names none, unless the cluster is set otherwise (Qdrant's API docs say
`replica`; its server's code uses `snapshot`)."""
PRIORITY_DEFAULT_CHOICES: tuple[str, ...] = (SnapshotPriority.REPLICA.value, SnapshotPriority.SNAPSHOT.value)
"""The priorities a cluster may take as its default."""


class TransferKey(NamedTuple):
    """What names one shard transfer in the state, in the nodes' reports and in events: a shard has at most
    one transfer from or to a peer at a time."""

    collection: str
    shard: int
    source: int
    target: int

    @classmethod
    def of(cls, transfer: Mapping[str, Any]) -> TransferKey:
        """The key of a transfer as the state lists it (`shard_id`, `from`, `to`) or as a report or an event
        names it (`shard`, `from`, `to`)."""
        shard = transfer["shard_id"] if "shard_id" in transfer else transfer["shard"]
        return cls(str(transfer["collection"]), int(shard), int(transfer["from"]), int(transfer["to"]))

    def text(self) -> str:
        return f"{self.source} -> {self.target} of shard {self.shard} of `{self.collection}`"


TRANSFER_RETRY_WAITS_S: tuple[float, ...] = (1.0, 2.0)
"""The source's waits before a transfer's second and third attempts (node setting `transfer_attempts`,
3 by default; a later attempt would wait as long as the last)."""


def transfer_retry_wait_s(attempt: int) -> float | None:
    """The wait after failed attempt `attempt` before the next one, or None after the last default attempt
    (what the coordinator tells when an attempt fails)."""
    return TRANSFER_RETRY_WAITS_S[attempt - 1] if 1 <= attempt <= len(TRANSFER_RETRY_WAITS_S) else None


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
    values = vector if type(vector) is list else list(vector)
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


def _shards(state: Mapping[str, Any], collection: str) -> Mapping[str, Mapping[str, str]]:
    description = state.get("collections", {}).get(collection)
    return description["shards"] if description is not None else {}


def replica_map(state: Mapping[str, Any], collection: str) -> dict[int, dict[int, str]]:
    """`shard -> peer -> state` of one collection in a cluster state or a node's view (int keys; empty
    when the collection is unknown)."""
    return {int(shard): {int(peer): st for peer, st in peers.items()}
            for shard, peers in _shards(state, collection).items()}


def shard_replicas(state: Mapping[str, Any], collection: str, shard: int) -> dict[int, str]:
    """`peer -> state` of one shard in a cluster state or a node's view (empty when unknown)."""
    return {int(peer): st for peer, st in _shards(state, collection).get(str(shard), {}).items()}


def peer_replicas(state: Mapping[str, Any], collection: str, peer: int) -> dict[int, str]:
    """`shard -> state` of the replicas one peer holds of a collection, in a cluster state or a view."""
    key = str(peer)
    return {int(shard): peers[key] for shard, peers in _shards(state, collection).items() if key in peers}


def cluster_info_replicas(info: Mapping[str, Any]) -> dict[int, dict[int, str]]:
    """`shard -> peer -> state` from Qdrant's collection cluster info (`GET /collections/{c}/cluster`) as one
    node answers it: its `local_shards` and `remote_shards`."""
    replicas: dict[int, dict[int, str]] = {}
    for local in info["local_shards"]:
        replicas.setdefault(int(local["shard_id"]), {})[int(info["peer_id"])] = local["state"]
    for remote in info["remote_shards"]:
        replicas.setdefault(int(remote["shard_id"]), {})[int(remote["peer_id"])] = remote["state"]
    return replicas
