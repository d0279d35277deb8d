"""Vectors print as Qdrant prints float32 (the shortest decimal that reads back): the bulk path used for every
dense vector (`floats32_shortest`) gives exactly what the one-value rule (`float32_shortest`) gives."""

from __future__ import annotations

import random
import struct

from node.storage.vectors import float32_shortest, floats32_shortest

SPECIAL = [0.0, -0.0, 1e-45, 1e-40, -1e-39, 1e-38, 1.5, 0.15, 3.4028234e38, float("inf"), float("-inf"),
           float("nan")]


def values_drawn(rng: random.Random, count: int) -> list[float]:
    kind = rng.randrange(4)
    if kind == 0:
        return [rng.uniform(-1, 1) for _ in range(count)]
    if kind == 1:
        return [round(rng.uniform(-10, 10), rng.randint(0, 4)) for _ in range(count)]
    if kind == 2:
        return [rng.choice(SPECIAL) for _ in range(count)]
    return [struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0] for _ in range(count)]


def test_bulk_printing_equals_the_one_value_rule() -> None:
    rng = random.Random(20261201)
    for _ in range(3000):
        count = rng.randint(0, 48)
        data = struct.pack(f"<{count}f", *values_drawn(rng, count))
        one_by_one = [float32_shortest(value) for value in struct.unpack(f"<{count}f", data)]
        assert [repr(v) for v in floats32_shortest(data)] == [repr(v) for v in one_by_one]


def test_values_print_as_short_as_qdrant_prints_them() -> None:
    data = struct.pack("<4f", 0.15, 1e-45, -2.5, 0.1)
    assert [repr(v) for v in floats32_shortest(data)] == ["0.15", "1e-45", "-2.5", "0.1"]
