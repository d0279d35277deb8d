"""Every fault in simulation: each toxic and link cut through the project's fault proxy, process faults as
SIGSTOP/SIGKILL would do them, the coordinator's kill and restart, and a broker outage."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.sim import sim_unavailable

if sim_unavailable:
    pytest.skip(sim_unavailable, allow_module_level=True)

from cluster.pytest_plugin import wait_replicas_active  # noqa: E402
from cluster.sim.run import case_run_sim  # noqa: E402

POINTS = 2000


async def collection_make(session: aiohttp.ClientSession, url: str, replication_factor: int = 2) -> None:
    async with session.put(f"{url}/collections/c", json={
            "vectors": {"size": 16, "distance": "Dot"}, "shard_number": 1,
            "replication_factor": replication_factor}) as response:
        assert response.status == 200, await response.text()
    points = [{"id": i, "vector": [i / POINTS] * 16, "payload": {"i": i}} for i in range(POINTS)]
    async with session.put(f"{url}/collections/c/points?wait=true", json={"points": points}) as response:
        assert response.status == 200, await response.text()


async def scroll(session: aiohttp.ClientSession, address: str, timeout_s: float = 10.0) -> tuple[str, float, int]:
    """Scroll every point through `address`: (outcome, virtual seconds it took, bytes received)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with session.post(f"http://{address}/collections/c/points/scroll", json={
                "limit": POINTS, "with_vector": True}, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            body = await response.read()
            return f"HTTP {response.status}", round(loop.time() - started, 3), len(body)
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__, round(loop.time() - started, 3), 0


def test_every_toxic_and_link_cut_acts_through_the_fault_proxy(tmp_path: Path) -> None:
    async def case(cluster: Any, nemesis: Any) -> dict[str, tuple[str, float, int]]:
        found = {}
        link = cluster.links["n1->n2"]  # the runner dials the link's listener, as n1 does
        async with aiohttp.ClientSession() as session:
            await collection_make(session, cluster.node_url("n2"))
            await wait_replicas_active(cluster, "c")
            found["none"] = await scroll(session, link)
            size = found["none"][2]
            for name, apply in [
                    ("latency", lambda: nemesis.latency("n1", "n2", ms=300)),
                    ("bandwidth", lambda: nemesis.bandwidth("n1", "n2", kb_s=max(1, size // 1000 // 2))),
                    ("slicer", lambda: nemesis.slice("n1", "n2", average_size=500, size_variation=100,
                                                     delay_us=1000)),
                    ("limit_data", lambda: nemesis.cut_after("n1", "n2", bytes_count=1000)),
                    ("reset_peer", lambda: nemesis.reset("n1", "n2", timeout_ms=200)),
                    ("timeout", lambda: nemesis._toxic("timeout", "n1", "n2", "timeout", {"timeout": 700})),
                    ("slow_close", lambda: nemesis._toxic("slow_close", "n1", "n2", "slow_close", {"delay": 500})),
                    ("link_down", lambda: nemesis.link_down("n1", "n2"))]:
                handle = await apply()
                await session.close()
                session = aiohttp.ClientSession()  # a new connection: toxics apply to links opened after them
                found[name] = await scroll(session, link, timeout_s=5.0)
                await handle.heal()
            found["healed"] = await scroll(session, link)
            await session.close()
        return found
    found = case_run_sim(case, 1, tmp_path / "run", nodes=2)
    size = found["none"][2]
    assert found["none"][0] == "HTTP 200" and found["none"][1] < 0.05 and size > 50_000
    assert found["latency"][0] == "HTTP 200" and found["latency"][1] >= 0.3
    assert found["bandwidth"][0] == "HTTP 200" and 1.5 <= found["bandwidth"][1] <= 3.0  # half the size a second
    assert found["slicer"] == ("HTTP 200", found["slicer"][1], size) and found["slicer"][1] > found["none"][1]
    assert found["limit_data"][0] in ("ClientPayloadError", "ServerDisconnectedError", "ClientOSError")
    assert found["reset_peer"][0] in ("ClientOSError", "ServerDisconnectedError") and 0.2 <= found["reset_peer"][1] < 1
    assert found["timeout"][0] in ("ServerDisconnectedError", "ClientOSError") and 0.7 <= found["timeout"][1] < 1.5
    assert found["slow_close"][0] == "HTTP 200"
    assert found["link_down"][0] == "ClientConnectorError" and found["link_down"][1] < 0.05
    assert found["healed"][0] == "HTTP 200" and found["healed"][2] == size


def test_pause_holds_a_node_kill_refuses_and_restart_keeps_its_acknowledged_writes(tmp_path: Path) -> None:
    async def case(cluster: Any, nemesis: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        n2 = cluster.node_url("n2").removeprefix("http://")
        async with aiohttp.ClientSession() as session:
            await collection_make(session, cluster.node_url("n2"), replication_factor=1)
            pause = await nemesis.node_pause("n2")
            found["paused"] = await scroll(session, n2, timeout_s=2.0)
            held = asyncio.ensure_future(scroll(session, n2, timeout_s=10.0))
            await asyncio.sleep(3.0)
            await pause.heal()
            found["held_then_resumed"] = await held
            kill = await nemesis.node_kill("n2")
            found["pooled_after_kill"] = await scroll(session, n2)  # its keep-alive connection was reset
            async with aiohttp.ClientSession() as fresh:
                found["killed"] = await scroll(fresh, n2)  # a new connection is refused
            found["alive_after_kill"] = cluster.node_alive("n2")
            await kill.heal()  # restart on the same port and data directory
            found["restarted"] = await scroll(session, n2)
        return found
    found = case_run_sim(case, 2, tmp_path / "run", nodes=2)
    assert found["paused"][0] == "TimeoutError" and found["paused"][1] == 2.0
    assert found["held_then_resumed"][0] == "HTTP 200" and found["held_then_resumed"][1] >= 3.0
    assert found["pooled_after_kill"][0] in ("ClientOSError", "ServerDisconnectedError")
    assert found["killed"][0] == "ClientConnectorError" and found["alive_after_kill"] is False
    assert found["restarted"][0] == "HTTP 200" and found["restarted"][2] == found["held_then_resumed"][2]


def test_the_coordinator_killed_and_restarted_resumes_from_its_sqlite_file(tmp_path: Path) -> None:
    async def case(cluster: Any, nemesis: Any) -> dict[str, Any]:
        async def state() -> Any:
            async with session.get(f"{cluster.coordinator_url}/internal/state",
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                return await response.json()
        async with aiohttp.ClientSession() as session:
            await collection_make(session, cluster.node_url("n1"))
            before = await state()
            kill = await nemesis.node_kill("coordinator")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await state()
                return {"answered while killed": True}
            await kill.heal()
            after = await state()
        return {"before": (before["version"], before["collections"]), "after": (after["version"], after["collections"])}
    found = case_run_sim(case, 3, tmp_path / "run", nodes=2)
    assert found["after"] == found["before"]


def test_a_broker_outage_delivers_nothing_until_healed_and_the_bus_works_after(tmp_path: Path) -> None:
    async def case(cluster: Any, nemesis: Any) -> dict[str, Any]:
        from cluster.events.subscriber import events_stream
        seen: list[tuple[float, str]] = []
        subscribed = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def read() -> None:
            stream = events_stream(cluster.mqtt_url, cluster.cluster_name, {"replica.state"},
                                   on_subscribed=subscribed.set)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    seen.append((loop.time(), event["collection"]))
        reader = asyncio.ensure_future(read())
        await subscribed.wait()
        async with aiohttp.ClientSession() as session:
            outage = await nemesis.broker_outage()
            down_s = loop.time()
            await collection_make(session, cluster.node_url("n1"))  # its events wait in their publisher's queue
            await asyncio.sleep(2.0)
            subscribed.clear()
            await outage.heal()
            up_s = loop.time()
            await subscribed.wait()
            await asyncio.sleep(10.0)
            async with session.put(f"{cluster.node_url('n1')}/collections/d", json={
                    "vectors": {"size": 4, "distance": "Dot"}}) as response:
                assert response.status == 200
            await asyncio.sleep(2.0)
        reader.cancel()
        return {"down": down_s, "up": up_s, "seen": seen}
    found = case_run_sim(case, 4, tmp_path / "run", nodes=2)
    assert not [t for t, _ in found["seen"] if found["down"] <= t < found["up"]]
    assert "d" in {collection for _, collection in found["seen"]}
