"""The one way to wait and to retry, for the node, the cluster tools and the tests.

- `wait_until(condition, timeout_s, ...)`: poll a condition (plain or async) until it holds, with a deadline;
  raises `WaitTimeout` saying what was awaited and, when the condition returned something, what it last saw.
- `Backoff`: the waits between attempts, exponential and capped (`Backoff(first_s=0.2, max_s=3.0)`), or a
  fixed sequence (`Backoff.fixed(1.0, 2.0)`); `retry(call, attempts=..., backoff=..., retry_on=...)` runs a call
  until it succeeds, for a bounded number of attempts or until a deadline (`timeout_s`), or both.
  A loop that must go on forever (a reconnecting client) takes only its waits from a `Backoff`.

Time is the running event loop's (`loop.time()`), so a simulated loop's virtual clock drives every deadline.
Pure asyncio, no node state: `cluster/` may import it (tests/test_layout.py).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, overload

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A wait ran past its deadline; the message says what was awaited and what was last seen."""


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts: `first_s`, then times `factor` each time, never above `max_s`; or, when
    `sequence` is given, those waits in order (the last repeated)."""

    first_s: float = 0.1
    factor: float = 2.0
    max_s: float = 2.0
    sequence: tuple[float, ...] = ()

    @classmethod
    def fixed(cls, *waits_s: float) -> Backoff:
        return cls(sequence=tuple(waits_s))

    def wait_s(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based)."""
        if self.sequence:
            return self.sequence[min(attempt - 1, len(self.sequence) - 1)]
        try:
            return min(self.first_s * self.factor ** (attempt - 1), self.max_s)
        except OverflowError:  # a loop that retries forever reaches attempts whose power is too large
            return self.max_s

    def waits(self) -> Iterator[float]:
        attempt = 1
        while True:
            yield self.wait_s(attempt)
            attempt += 1


async def _evaluate(condition: Callable[[], Any]) -> Any:
    value = condition()
    if inspect.isawaitable(value):
        value = await value
    return value


@overload
async def wait_until(condition: Callable[[], Awaitable[T]], timeout_s: float, interval_s: float = 0.1,
                     what: str = "", ignore: tuple[type[BaseException], ...] = ()) -> T: ...


@overload
async def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.1,
                     what: str = "", ignore: tuple[type[BaseException], ...] = ()) -> T: ...


async def wait_until(condition: Callable[[], Any], timeout_s: float, interval_s: float = 0.1,
                     what: str = "", ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Poll `condition` every `interval_s` until it returns something truthy (returned), at most `timeout_s`.

    Errors of the kinds in `ignore` count as "not yet" (a process still starting, say)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last = await _evaluate(condition)
            last_error = None
        except ignore as error:
            last, last_error = None, error
        if last:
            return last
        remaining = deadline - loop.time()
        if remaining <= 0:
            seen = f"; last error: {last_error!r}" if last_error is not None else (
                f"; last seen: {last!r}" if last is not None and last is not False else "")
            raise WaitTimeout(f"waited {timeout_s:g} s for {what or 'a condition'}{seen}")
        await asyncio.sleep(min(interval_s, remaining))


async def retry(call: Callable[[], Awaitable[T]], *, backoff: Backoff,
                retry_on: tuple[type[BaseException], ...], attempts: int | None = None, timeout_s: float | None = None,
                give_up: Callable[[BaseException], bool] | None = None,
                on_failure: Callable[[int, BaseException], None] | None = None) -> T:
    """Run `call` until it succeeds, waiting `backoff` between attempts: at most `attempts` times, and no new
    attempt once `timeout_s` has passed since the first began (at least one of the two bounds is given).

    Errors outside `retry_on`, errors for which `give_up(error)` is true, and the last attempt's error are
    raised. `on_failure(attempt, error)` is told of each failed attempt before its wait."""
    assert attempts is not None or timeout_s is not None, "retry needs a bound: attempts or timeout_s"
    assert attempts is None or attempts >= 1, "retry needs at least one attempt"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s if timeout_s is not None else None
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except retry_on as error:
            if attempt == attempts or (deadline is not None and loop.time() > deadline) or (
                    give_up is not None and give_up(error)):
                raise
            if on_failure is not None:
                on_failure(attempt, error)
            await asyncio.sleep(backoff.wait_s(attempt))
