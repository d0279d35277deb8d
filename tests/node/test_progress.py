"""A transfer's progress reporter owns its sending task: the task ends with the block, and its errors reach
the transfer instead of vanishing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node.errors import NotFound
from node.replication.progress import Reporter, TransferGone
from node.retry import wait_until

TRANSFER = {"collection": "c", "shard_id": 0, "from": 1, "to": 2}


class CoordinatorStub:
    """The part of a cluster agent the reporter calls: `coordinator_call`, answered by `answer`."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []
        self.cancelled = False

    async def coordinator_call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        self.bodies.append(body)
        try:
            return await self.answer(body)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_reports_are_delivered_in_order_and_flush_waits_for_them() -> None:
    async def accept(body: dict[str, Any]) -> bool:
        await asyncio.sleep(0.01)
        return True
    agent = CoordinatorStub(accept)
    async with Reporter(agent, TRANSFER) as reporter:  # type: ignore[arg-type]
        reporter.progress(phase="streaming", bytes=1)
        reporter.progress(phase="streamed", bytes=2)
        await reporter.flush()
        assert [body["phase"] for body in agent.bodies] == ["streaming", "streamed"]


async def test_leaving_the_block_cancels_and_awaits_a_report_in_flight() -> None:
    async def never(body: dict[str, Any]) -> bool:
        await asyncio.Event().wait()
        return True
    agent = CoordinatorStub(never)
    async with Reporter(agent, TRANSFER) as reporter:  # type: ignore[arg-type]
        reporter.progress(phase="streaming", bytes=1)
        await wait_until(lambda: agent.bodies, timeout_s=5, interval_s=0.005, what="the report to be sent")
        task = reporter.task
    assert task is not None and task.done() and agent.cancelled


async def test_a_forgotten_transfer_is_raised_by_flush() -> None:
    async def gone(body: dict[str, Any]) -> bool:
        raise NotFound("transfer does not exist")
    async with Reporter(CoordinatorStub(gone), TRANSFER) as reporter:  # type: ignore[arg-type]
        reporter.progress(phase="streaming", bytes=1)
        with pytest.raises(TransferGone):
            await reporter.flush()


async def test_an_unexpected_error_of_the_sending_task_reaches_the_transfer() -> None:
    async def broken(body: dict[str, Any]) -> bool:
        raise RuntimeError("a bug in reporting")
    with pytest.raises(ExceptionGroup) as raised:
        async with Reporter(CoordinatorStub(broken), TRANSFER) as reporter:  # type: ignore[arg-type]
            reporter.progress(phase="streaming", bytes=1)
            await asyncio.sleep(5)  # cancelled by the failing task at once
    assert raised.group_contains(RuntimeError, match="a bug in reporting")
