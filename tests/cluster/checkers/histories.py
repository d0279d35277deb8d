"""Builders of literal histories for the checker tests: each returns the records a run would have written."""

from __future__ import annotations

from typing import Any

from node.protocol import point_id_normalize, shard_digest

ZERO_DIGEST = "0" * 64


def meta(collections: dict[str, tuple[int, int]] | None = None, default_priority: str = "replica",
         peers: int = 3) -> dict[str, Any]:
    """A meta record; `collections` maps name -> (shard_number, replication_factor)."""
    shapes = collections or {"c": (1, 2)}
    return {"type": "meta", "time": 0.0, "scenario": "literal", "seed": 7, "command": "shardsim run literal "
            "--seed 7", "default_priority": default_priority,
            "collections": {name: {"shard_number": n, "replication_factor": rf, "write_consistency_factor": 1}
                            for name, (n, rf) in shapes.items()},
            "peers": {str(p): f"n{p}" for p in range(1, peers + 1)}}


def op(op_id: int, f: str, value: Any, time_invoke_s: float, time_complete_s: float | None,
       completion: str | None = "ok", result: Any = None, error: str | None = None) -> list[dict[str, Any]]:
    """An invoke and its completion (no completion record when `completion` is None)."""
    records = [{"type": "invoke", "time": time_invoke_s, "process": op_id % 4, "op_id": op_id, "f": f,
                "value": value, "error": None}]
    if completion is not None:
        records.append({"type": completion, "time": time_complete_s, "process": op_id % 4, "op_id": op_id,
                        "f": f, "value": value if result is None else result, "error": error})
    return records


def point(point_id: Any, x: float, tag: str = "") -> dict[str, Any]:
    return {"id": point_id, "vector": [x, x + 1.0], "payload": {"tag": tag}}


def upsert(op_id: int, points: list[dict[str, Any]], t0: float, t1: float | None, completion: str | None = "ok",
           collection: str = "c") -> list[dict[str, Any]]:
    return op(op_id, "upsert", {"collection": collection, "points": points}, t0, t1, completion)


def delete(op_id: int, ids: list[Any], t0: float, t1: float | None, completion: str | None = "ok",
           collection: str = "c") -> list[dict[str, Any]]:
    return op(op_id, "delete", {"collection": collection, "ids": ids}, t0, t1, completion)


def read_all(points: list[dict[str, Any]], collection: str = "c", time_s: float = 100.0) -> dict[str, Any]:
    return {"type": "final", "time": time_s, "f": "read_all", "value": {"collection": collection, "points": {
        str(p["id"]): {"vector": p["vector"], "payload": p["payload"]} for p in points}}}


def digest(points: list[dict[str, Any]]) -> str:
    return shard_digest((point_id_normalize(p["id"]), p["vector"], p["payload"]) for p in points)


def final_replicas(replicas: dict[tuple[str, int, int], tuple[str, str]], time_s: float = 100.0,
                   points_count: int = 0) -> dict[str, Any]:
    """A final replicas observation from {(collection, shard, peer): (state, digest)}."""
    value: dict[str, Any] = {}
    for (collection, shard, peer), (state, shard_digest_hex) in sorted(replicas.items()):
        value.setdefault(collection, {}).setdefault(str(shard), {})[str(peer)] = {
            "state": state, "digest": shard_digest_hex, "points_count": points_count}
    return {"type": "final", "time": time_s, "f": "replicas", "value": value}


def event(time_s: float, kind: str, source: Any = "coordinator", **fields: Any) -> dict[str, Any]:
    return {"type": "event", "time": time_s, "event": {"ts": 1_700_000_000.0 + time_s, "source": source,
                                                       "kind": kind, **fields}}


def replica_state(time_s: float, collection: str, shard: int, peer: int, to: str | None,
                  state_from: str | None = None, rule: str = "", explanation: str = "") -> dict[str, Any]:
    return event(time_s, "replica.state", collection=collection, shard=shard, peer=peer, to=to,
                 reason=explanation or "test", rule=rule, explanation=explanation, **{"from": state_from})


def placement_events(placement: dict[tuple[str, int], list[int]], time_s: float = 0.5) -> list[dict[str, Any]]:
    """Setup events that make each listed replica Active (what the oracle reads as the placement)."""
    return [replica_state(time_s, c, s, p, "Active", "Initializing")
            for (c, s), peers in sorted(placement.items()) for p in peers]
