"""The one way to wait and retry (node/retry.py): deadlines hold, attempts are bounded, waits are as asked."""

from __future__ import annotations

import asyncio

import pytest

from node.retry import Backoff, WaitTimeout, retry, wait_until


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(first_s=0.25, factor=2.0, max_s=1.5)
    assert [backoff.wait_s(attempt) for attempt in range(1, 6)] == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_a_fixed_backoff_repeats_its_last_wait() -> None:
    assert [Backoff.fixed(1.0, 2.0).wait_s(attempt) for attempt in (1, 2, 3)] == [1.0, 2.0, 2.0]


async def test_wait_until_returns_the_first_truthy_value() -> None:
    seen = []

    async def condition() -> int:
        seen.append(1)
        return len(seen) if len(seen) >= 3 else 0
    assert await wait_until(condition, timeout_s=5, interval_s=0.001) == 3


class Seen(str):
    """A falsy value that still says what it is, as a condition returns when it does not hold yet."""

    def __bool__(self) -> bool:
        return False


async def test_wait_until_says_what_it_waited_for_and_what_it_last_saw() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WaitTimeout, match=r"waited 0.2 s for the replica to be Active; last seen: 'Dead'"):
        await wait_until(lambda: Seen("Dead"), timeout_s=0.2, interval_s=0.05, what="the replica to be Active")
    assert 0.2 <= loop.time() - started < 2.0


async def test_wait_until_counts_ignored_errors_as_not_yet() -> None:
    calls = []

    def condition() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("still starting")
        return True
    assert await wait_until(condition, timeout_s=5, interval_s=0.001, ignore=(OSError,)) is True
    with pytest.raises(WaitTimeout, match="last error: ConnectionRefusedError"):
        await wait_until(lambda: (_ for _ in ()).throw(ConnectionRefusedError("down")), timeout_s=0.05,
                         interval_s=0.01, ignore=(OSError,))


async def test_retry_stops_after_its_attempts_and_raises_the_last_error() -> None:
    failures: list[int] = []

    async def call() -> None:
        raise OSError(f"attempt {len(failures) + 1}")
    with pytest.raises(OSError, match="attempt 3"):
        await retry(call, attempts=3, backoff=Backoff.fixed(0.001), retry_on=(OSError,),
                    on_failure=lambda attempt, error: failures.append(attempt))
    assert failures == [1, 2]


async def test_retry_gives_up_at_once_on_errors_it_is_told_to() -> None:
    calls = []

    async def call() -> None:
        calls.append(1)
        raise PermissionError("refused for good")
    with pytest.raises(PermissionError):
        await retry(call, attempts=5, backoff=Backoff.fixed(0.001), retry_on=(OSError,),
                    give_up=lambda error: isinstance(error, PermissionError))
    assert len(calls) == 1


async def test_retry_returns_the_first_success() -> None:
    calls = []

    async def call() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise TimeoutError()
        return "done"
    assert await retry(call, attempts=3, backoff=Backoff.fixed(0.001), retry_on=(TimeoutError,)) == "done"



async def test_retry_with_a_deadline_stops_trying_once_it_passed() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempts: list[float] = []

    async def call() -> None:
        attempts.append(loop.time() - started)
        raise ConnectionRefusedError("coordinator not up")
    with pytest.raises(ConnectionRefusedError):
        await retry(call, timeout_s=0.3, backoff=Backoff.fixed(0.05), retry_on=(OSError,))
    assert 2 <= len(attempts) <= 8, attempts  # one every 0.05 s at most, for 0.3 s, and one past the deadline
    assert attempts[-2] <= 0.3 < attempts[-1] + 0.05, "the last attempt is the first to fail past the deadline"


async def test_retry_needs_a_bound() -> None:
    async def call() -> None:
        raise OSError()
    with pytest.raises(AssertionError, match="needs a bound"):
        await retry(call, backoff=Backoff.fixed(0.001), retry_on=(OSError,))


def test_a_backoff_that_runs_forever_stays_at_its_cap() -> None:
    backoff = Backoff(first_s=0.05, factor=2.0, max_s=5.0)
    assert backoff.wait_s(100_000) == 5.0
