"""The server's lifecycle and our own client: closing owns everything, `main` runs and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from cluster.proxy.client import ToxiproxyClient, ToxiproxyError
from cluster.proxy.server import ProxyServer
from node.retry import wait_until
from tests.cluster.proxy.conftest import IO_TIMEOUT_S, Connections, TcpServer, read_all, read_exactly
from tests.processes import free_port

REPOSITORY = Path(__file__).resolve().parents[3]


async def test_leaving_the_server_closes_proxies_and_connections(
    tcp_server: TcpServer, connections: Connections
) -> None:
    async with ProxyServer(port=0) as server, ToxiproxyClient(server.url) as client:
        proxy = await client.proxy_create("a", "127.0.0.1:0", tcp_server.address)
        await client.toxic_add("a", "latency", {"latency": 10_000})
        reader, writer = await connections.open(proxy["listen"])
        writer.write(b"pending")
        await wait_until(lambda: tcp_server.received_bytes == [7], IO_TIMEOUT_S, 0.01,
                         what="the echo to be on its way back, held by the latency")
    assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await connections.open(proxy["listen"])
    with pytest.raises(ConnectionRefusedError):
        await connections.open(server.url.removeprefix("http://"))


async def test_server_binds_the_requested_port() -> None:
    port = free_port()
    async with ProxyServer(port=port) as server:
        assert server.port == port and server.url == f"http://127.0.0.1:{port}"


async def test_client_covers_the_api(client: ToxiproxyClient, tcp_server: TcpServer, connections: Connections) -> None:
    assert (await client.version()).startswith("2.")
    proxy = await client.proxy_create("n1->n2", "127.0.0.1:0", tcp_server.address)
    assert await client.proxy_get("n1->n2") == proxy
    assert await client.proxies() == {"n1->n2": proxy}
    toxic = await client.toxic_add("n1->n2", "latency", {"latency": 1}, stream="upstream", name="slow")
    assert toxic["name"] == "slow" and toxic["stream"] == "upstream"
    updated = await client.toxic_update("n1->n2", "slow", {"jitter": 1}, toxicity=0.5)
    assert updated["attributes"] == {"latency": 1, "jitter": 1} and updated["toxicity"] == 0.5
    assert await client.toxics("n1->n2") == [updated]
    await client.toxic_remove("n1->n2", "slow")
    assert (await client.proxy_update("n1->n2", enabled=False))["enabled"] is False
    await client.reset()
    assert (await client.proxy_get("n1->n2"))["enabled"] is True
    populated = await client.populate([{"name": "b", "listen": "127.0.0.1:0", "upstream": tcp_server.address}])
    assert [p["name"] for p in populated] == ["b"]
    reader, writer = await connections.open(populated[0]["listen"])
    writer.write(b"ok")
    assert await read_exactly(reader, 2) == b"ok"
    await client.proxy_delete("b")
    assert set(await client.proxies()) == {"n1->n2"}


async def test_client_raises_the_server_error(client: ToxiproxyClient) -> None:
    with pytest.raises(ToxiproxyError) as caught:
        await client.proxy_get("nope")
    assert (caught.value.status, caught.value.message) == (404, "proxy not found")


async def test_client_raises_when_the_server_is_unreachable() -> None:
    async with ToxiproxyClient(f"http://127.0.0.1:{free_port()}", timeout_s=2) as client:
        with pytest.raises(ToxiproxyError) as caught:
            await client.version()
    assert caught.value.status == 0


def version_get(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:
        return dict(json.loads(response.read()))


async def test_main_serves_until_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cluster.proxy",
        "--port",
        str(port),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert f"127.0.0.1:{port}".encode() in line
        assert "version" in await asyncio.to_thread(version_get, port)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
