"""The one clock and the one source of randomness of every shardsim process: node, coordinator, proxy, event
bus, runner.

Code never calls `time.time()`, `time.monotonic()`, `time.perf_counter()`, `datetime.now()`, `random`,
`secrets` or `uuid.uuid4()` directly (tests/test_determinism_seams.py enforces it); it calls these functions:

- `now()` / `now_ns()` / `utcnow()`: the wall clock (epoch seconds, nanoseconds, an aware UTC datetime);
- `monotonic()`: seconds for durations and deadlines;
- `rng()`: the random source (`random.Random` API); `token_hex(n)`, `randbelow(n)`, `uuid4()` built on it.

Real mode (the default) is the OS: the wall clock and `secrets`' randomness, exactly as before. A simulation
installs a `Runtime` whose clock is the simulated loop's virtual time and whose randomness is seeded
(`install(...)`, `installed(...)`), so that a seed replays every time, id, name and random choice. Pure: no
I/O, no node state, so `cluster/` may import it (tests/test_layout.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Runtime:
    """Where time and randomness come from. The default reads the OS's clock and randomness."""

    wall_s: Callable[[], float] = time.time
    monotonic_s: Callable[[], float] = time.monotonic
    random_source: random.Random = field(default_factory=random.SystemRandom)
    simulated: bool = False


_runtime = Runtime()


def install(runtime: Runtime) -> Runtime:
    """Make `runtime` the process's clock and randomness; returns the one it replaces."""
    global _runtime
    previous, _runtime = _runtime, runtime
    return previous


@contextlib.contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """`install` for the duration of a `with` block (a simulated run), then put the previous one back."""
    previous = install(runtime)
    try:
        yield runtime
    finally:
        install(previous)


def runtime() -> Runtime:
    return _runtime


def simulated() -> bool:
    return _runtime.simulated


def now() -> float:
    """Wall-clock time in seconds since the epoch."""
    return _runtime.wall_s()


def now_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch (microsecond resolution in a simulation)."""
    if _runtime.simulated:
        return round(_runtime.wall_s() * 1_000_000) * 1000
    return time.time_ns()


def utcnow() -> dt.datetime:
    """The wall clock as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(now(), dt.UTC)


def monotonic() -> float:
    """Seconds that only grow, for durations and deadlines."""
    return _runtime.monotonic_s()


def rng() -> random.Random:
    """The random source: the OS's in real mode, a seeded one in a simulation."""
    return _runtime.random_source


def token_hex(nbytes: int = 8) -> str:
    return rng().getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def randbelow(exclusive_upper_bound: int) -> int:
    return rng().randrange(exclusive_upper_bound)


def uuid4() -> uuid.UUID:
    return uuid.UUID(int=rng().getrandbits(128), version=4)
