"""The workload client's classification and the context's writers, without a cluster.

Both were found by the transfer torture (tests/cluster/test_transfer_torture.py): a write recorded `fail`
although it was applied (aiohttp had sent it, lost the connection to a node killed mid-request, and tried
again into a refused connection), and a plan that failed inside `ctx.writers` was reported as the tool
crashing (its error came out wrapped in an ExceptionGroup) instead of the plan failing.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError
from cluster.runner.client import Outcome, WorkloadClient, request_trace
from node.retry import wait_until


def workload_client(session: aiohttp.ClientSession) -> WorkloadClient:
    return WorkloadClient(session, history=None, events=None)  # type: ignore[arg-type]  # call() uses neither


async def test_a_refusal_after_the_request_was_sent_is_unknown_not_failed() -> None:
    received: list[bytes] = []

    async def receive_then_vanish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        server.close()  # like a node killed mid-request: the connection drops and nothing listens any more
        writer.close()

    server = await asyncio.start_server(receive_then_vanish, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession(trace_configs=[request_trace()]) as session:
        outcome = await workload_client(session).call("PUT", f"http://127.0.0.1:{port}/collections/c/points",
                                                      json={"points": []}, timeout_s=5)
    await server.wait_closed()
    assert received and received[0].startswith(b"PUT /collections/c/points")
    assert outcome.completion == "info", outcome


async def test_a_refusal_before_anything_was_sent_is_a_failure() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with aiohttp.ClientSession(trace_configs=[request_trace()]) as session:
        outcome = await workload_client(session).call("PUT", f"http://127.0.0.1:{port}/collections/c/points",
                                                      json={"points": []}, timeout_s=5)
    assert outcome.completion == "fail", outcome


class FakeCluster:
    def node_names(self) -> list[str]:
        return ["n1"]

    def node_url(self, name: str) -> str:
        return "http://127.0.0.1:1"


class FakeClient:
    async def upsert(self, process: int, node_url: str, collection: str, points: list[dict[str, Any]]) -> Outcome:
        await asyncio.sleep(0.001)
        return Outcome("ok", 200, {}, None)


async def test_a_plan_error_inside_writers_comes_out_as_itself(tmp_path: Path) -> None:
    async def plan(ctx: RunContext) -> None:
        return None
    scenario = Scenario(name="s", description="", plan=plan, collections={"c": CollectionSpec()})
    ctx = RunContext(scenario, 1, FakeCluster(), None, FakeClient(), None, None, None,  # type: ignore[arg-type]
                     tmp_path, print, random.Random(1))
    with pytest.raises(ScenarioError, match="waited in vain"):
        async with ctx.writers("c", count=2, interval_s=0.001) as stats:
            await wait_until(lambda: stats.operations >= 3, 5.0, interval_s=0.01, what="the writers write")
            raise ScenarioError("waited in vain")


def test_a_seed_draws_the_vectors_it_always_drew(tmp_path: Path) -> None:
    """`ctx.vector` is `round(rng.uniform(-1, 1), 4)` per value, computed faster: a scenario's points, and so its
    history, stay what they were for every seed."""
    async def plan(ctx: RunContext) -> None:
        return None
    scenario = Scenario(name="s", description="", plan=plan, collections={"c": CollectionSpec()})
    ctx = RunContext(scenario, 1, FakeCluster(), None, FakeClient(), None, None, None,  # type: ignore[arg-type]
                     tmp_path, print, random.Random(7))
    reference = random.Random(7)
    for size in (0, 1, 8, 64, 300):
        expected = [round(reference.uniform(-1, 1), 4) for _ in range(size)]
        assert [repr(v) for v in ctx.vector(size)] == [repr(v) for v in expected]
