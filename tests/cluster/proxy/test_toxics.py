"""Each toxic's effect, measured on real TCP streams through the proxy to an echo server.

The client writes to the proxy, the echo server sends every byte back: `upstream` toxics act on the way
in, `downstream` toxics on the way back. Bounds on time are generous sanity bounds, not speed targets.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

from cluster.proxy.client import ToxiproxyClient
from node.retry import wait_until
from tests.cluster.proxy.conftest import IO_TIMEOUT_S, Connections, TcpServer, read_all, read_exactly
from tests.processes import free_port

PROXY = "n1->n2"


@pytest.fixture
async def listen(client: ToxiproxyClient, tcp_server: TcpServer) -> str:
    proxy = await client.proxy_create(PROXY, "127.0.0.1:0", tcp_server.address)
    return str(proxy["listen"])


async def round_trip_s(connections: Connections, listen: str, payload: bytes = b"ping") -> float:
    reader, writer = await connections.open(listen)
    started = time.monotonic()
    writer.write(payload)
    assert await read_exactly(reader, len(payload)) == payload
    return time.monotonic() - started


async def test_no_toxic_passes_every_byte_in_order(listen: str, connections: Connections) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    reader, writer = await connections.open(listen)
    writer.write(payload)
    assert await read_exactly(reader, len(payload)) == payload


async def test_noop_changes_nothing(client: ToxiproxyClient, listen: str, connections: Connections) -> None:
    await client.toxic_add(PROXY, "noop", stream="upstream")
    await client.toxic_add(PROXY, "noop")
    payload = os.urandom(300_000)
    reader, writer = await connections.open(listen)
    writer.write(payload)
    assert await read_exactly(reader, len(payload)) == payload


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
async def test_latency_adds_at_least_the_delay(
    client: ToxiproxyClient, listen: str, connections: Connections, stream: str
) -> None:
    await client.toxic_add(PROXY, "latency", {"latency": 200, "jitter": 20}, stream=stream)
    elapsed_s = await round_trip_s(connections, listen)
    assert 0.18 <= elapsed_s < 1.5


async def test_latency_applies_to_open_connections_and_its_removal_too(
    client: ToxiproxyClient, listen: str, connections: Connections, tcp_server: TcpServer
) -> None:
    reader, writer = await connections.open(listen)
    await client.toxic_add(PROXY, "latency", {"latency": 150})
    started = time.monotonic()
    writer.write(b"a")
    assert await read_exactly(reader, 1) == b"a"
    assert time.monotonic() - started >= 0.15
    await client.toxic_update(PROXY, "latency_downstream", {"latency": 10_000})
    started = time.monotonic()
    writer.write(b"b")
    await wait_until(lambda: tcp_server.received_bytes == [2], IO_TIMEOUT_S, 0.01,
                     what="the echo of b to be on its way back, held by the latency")
    await client.toxic_remove(PROXY, "latency_downstream")
    assert await read_exactly(reader, 1) == b"b"
    assert time.monotonic() - started < 2.0


async def test_bandwidth_holds_the_rate(client: ToxiproxyClient, listen: str, connections: Connections) -> None:
    rate_kb_s = 400
    payload = os.urandom(600_000)
    await client.toxic_add(PROXY, "bandwidth", {"rate": rate_kb_s})
    reader, writer = await connections.open(listen)
    started = time.monotonic()
    writer.write(payload)
    assert await read_exactly(reader, len(payload), timeout_s=10) == payload
    measured_kb_s = len(payload) / 1000 / (time.monotonic() - started)
    assert rate_kb_s * 0.75 <= measured_kb_s <= rate_kb_s * 1.25


async def test_slow_close_delays_the_end_of_stream(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    await client.toxic_add(PROXY, "slow_close", {"delay": 300})
    reader, writer = await connections.open(listen)
    writer.write(b"bye")
    assert await read_exactly(reader, 3) == b"bye"
    started = time.monotonic()
    writer.write_eof()  # the echo server then closes, and its close is delayed on the way back
    assert await read_all(reader) == b""
    assert time.monotonic() - started >= 0.3


async def test_timeout_zero_is_a_black_hole_until_removed(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    reader, writer = await connections.open(listen)
    await client.toxic_add(PROXY, "timeout", {"timeout": 0})
    writer.write(b"lost")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await reader.read(100)
    assert not reader.at_eof()
    await client.toxic_remove(PROXY, "timeout_downstream")
    writer.write(b"after")
    assert await read_exactly(reader, 5) == b"after"  # what went in during the black hole is gone


async def test_timeout_closes_the_connection_after_the_delay(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    await client.toxic_add(PROXY, "timeout", {"timeout": 300}, stream="upstream")
    started = time.monotonic()
    reader, writer = await connections.open(listen)
    writer.write(b"never echoed")
    assert await read_all(reader) == b""
    assert 0.25 <= time.monotonic() - started < 2.0


@pytest.mark.parametrize("timeout_ms", [0, 200])
async def test_reset_peer_resets_the_connection(
    client: ToxiproxyClient, listen: str, connections: Connections, timeout_ms: int
) -> None:
    await client.toxic_add(PROXY, "reset_peer", {"timeout": timeout_ms})
    reader, writer = await connections.open(listen)
    started = time.monotonic()
    writer.write(b"hello")
    with pytest.raises(ConnectionResetError):
        await read_all(reader)
    assert time.monotonic() - started >= timeout_ms / 1000


async def test_slicer_delivers_every_byte_in_pieces(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    await client.toxic_add(PROXY, "slicer", {"average_size": 100, "size_variation": 20, "delay": 2000})
    payload = os.urandom(5000)
    reader, writer = await connections.open(listen)
    writer.write(payload)
    pieces: list[bytes] = []
    async with asyncio.timeout(5):
        while sum(map(len, pieces)) < len(payload):
            pieces.append(await reader.read(65536))
    assert b"".join(pieces) == payload
    assert len(pieces) >= 10


@pytest.mark.parametrize("limit_bytes", [1, 1000, 70_000])
async def test_limit_data_downstream_stops_at_exactly_n_bytes(
    client: ToxiproxyClient, listen: str, connections: Connections, limit_bytes: int
) -> None:
    await client.toxic_add(PROXY, "limit_data", {"bytes": limit_bytes})
    payload = os.urandom(200_000)
    reader, writer = await connections.open(listen)
    writer.write(payload)
    assert await read_all(reader) == payload[:limit_bytes]


async def test_limit_data_upstream_lets_exactly_n_bytes_reach_the_server(
    client: ToxiproxyClient, listen: str, connections: Connections, tcp_server: TcpServer
) -> None:
    await client.toxic_add(PROXY, "limit_data", {"bytes": 1234}, stream="upstream")
    reader, writer = await connections.open(listen)
    writer.write(os.urandom(10_000))
    await read_all(reader)
    async with asyncio.timeout(5):
        await tcp_server.connection_closed.wait()
    assert tcp_server.received_bytes == [1234]


async def test_toxicity_zero_never_applies(client: ToxiproxyClient, listen: str, connections: Connections) -> None:
    await client.toxic_add(PROXY, "timeout", {"timeout": 0}, toxicity=0.0)
    for _ in range(5):
        assert await round_trip_s(connections, listen) < 1.0


async def test_toxicity_one_applies_to_every_connection(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    await client.toxic_add(PROXY, "latency", {"latency": 100}, toxicity=1.0)
    for _ in range(3):
        assert await round_trip_s(connections, listen) >= 0.1


async def test_disabled_proxy_closes_open_connections_and_refuses_new_ones(
    client: ToxiproxyClient, listen: str, connections: Connections
) -> None:
    reader, writer = await connections.open(listen)
    writer.write(b"up")
    assert await read_exactly(reader, 2) == b"up"
    await client.proxy_update(PROXY, enabled=False)
    assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await connections.open(listen)
    await client.proxy_update(PROXY, enabled=True)
    assert await round_trip_s(connections, listen) < 1.0


async def test_unreachable_upstream_closes_the_client_connection(
    client: ToxiproxyClient, connections: Connections
) -> None:
    proxy = await client.proxy_create("dead", "127.0.0.1:0", f"127.0.0.1:{free_port()}")
    reader, _ = await connections.open(proxy["listen"])
    assert await read_all(reader) == b""


@pytest.mark.parametrize("toxic", [None, "latency"])
async def test_a_reader_that_stops_reading_stops_the_writer_and_loses_nothing(
    client: ToxiproxyClient, listen: str, connections: Connections, toxic: str | None
) -> None:
    if toxic is not None:
        await client.toxic_add(PROXY, toxic, {"latency": 5})
    reader, writer = await connections.open(listen)
    chunk = os.urandom(1024 * 1024)
    written_bytes = 0
    while written_bytes < 256 * 1024 * 1024:
        writer.write(chunk)
        written_bytes += len(chunk)
        try:
            async with asyncio.timeout(0.5):
                await writer.drain()
        except TimeoutError:
            break
    assert written_bytes < 64 * 1024 * 1024, "the proxy kept accepting bytes nobody read"
    received_digest = hashlib.sha256()
    received = 0
    async with asyncio.timeout(20):
        while received < written_bytes:
            data = await reader.read(1024 * 1024)
            assert data, "the stream ended early"
            received_digest.update(data)
            received += len(data)
    expected_digest = hashlib.sha256()
    for _ in range(written_bytes // len(chunk)):
        expected_digest.update(chunk)
    assert received == written_bytes
    assert received_digest.digest() == expected_digest.digest()
