"""The one clock and random source (node/clock.py): the OS's by default, a seeded one when installed."""

from __future__ import annotations

import random
import time

from node import clock


def test_real_mode_reads_the_wall_clock_and_the_os_randomness() -> None:
    assert not clock.simulated()
    assert abs(clock.now() - time.time()) < 5
    assert abs(clock.now_ns() / 1e9 - time.time()) < 5
    assert clock.utcnow().tzinfo is not None
    assert clock.token_hex(8) != clock.token_hex(8)
    assert len(clock.token_hex(4)) == 8


def seeded(seed: int, wall_s: float = 1_767_225_600.0) -> clock.Runtime:
    return clock.Runtime(wall_s=lambda: wall_s, monotonic_s=lambda: 12.5, random_source=random.Random(seed),
                         simulated=True)


def draws() -> tuple[object, ...]:
    return (clock.token_hex(8), clock.randbelow(1000), clock.uuid4(), clock.now_ns(), clock.utcnow().isoformat(),
            clock.monotonic())


def test_an_installed_runtime_replays_every_draw_from_its_seed() -> None:
    with clock.installed(seeded(7)):
        first = draws()
    with clock.installed(seeded(7)):
        again = draws()
    with clock.installed(seeded(8)):
        other = draws()
    assert first == again
    assert first[:3] != other[:3]
    assert first[3] == 1_767_225_600 * 10**9 and first[4] == "2026-01-01T00:00:00+00:00" and first[5] == 12.5
    assert not clock.simulated()  # the real runtime is back after the block


def test_uuid4_is_a_version_4_uuid() -> None:
    with clock.installed(seeded(1)):
        value = clock.uuid4()
    assert value.version == 4 and value.variant == "specified in RFC 4122"
