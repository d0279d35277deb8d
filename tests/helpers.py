"""Helpers shared by the node and the cluster tests: deterministic points to write and what reading them gives.

Waiting is `node.retry.wait_until` everywhere (a deadline, a poll interval, and what was awaited in its
error); processes and ports are in tests/processes.py; the REST client of a cluster is in
tests/cluster/helpers.py, the one of a standalone node in tests/node/client.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

Point = dict[str, Any]


def points_make(ids: Iterable[int], size: int = 4, tag: str = "a", seed: int = 7) -> list[Point]:
    """Points with these ids, the same for the same arguments: vectors of multiples of 1/8 (exact in float32,
    so they read back equal), payload `{"i": id, "tag": tag}`."""
    rng = random.Random(seed)
    return [{"id": point_id, "vector": [rng.randint(1, 64) / 8 for _ in range(size)],
             "payload": {"i": point_id, "tag": tag}} for point_id in ids]


def points_expected(points: list[Point]) -> dict[Any, tuple[list[float], dict[str, Any]]]:
    """What reading every point back gives: id -> (vector, payload)."""
    return {point["id"]: (point["vector"], point["payload"]) for point in points}
