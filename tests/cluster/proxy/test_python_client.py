"""The real `toxiproxy-python` package (0.1.1) against our server: every call it has.

The package is synchronous and keeps the server address process-wide (`APIConsumer`), so each test points
it at its own server and puts the old address back; calls run in a thread (`asyncio.to_thread`) so that
the server, on this event loop, can answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from cluster.proxy.server import ProxyServer
from tests.cluster.proxy.conftest import Connections, TcpServer, read_all, read_exactly


@pytest.fixture
def server(proxy_server: ProxyServer) -> Iterator[toxiproxy.Toxiproxy]:
    saved = (APIConsumer.host, APIConsumer.port)
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer("127.0.0.1", proxy_server.port)
    try:
        yield server
    finally:
        APIConsumer.host, APIConsumer.port = saved


async def test_running_and_version(server: toxiproxy.Toxiproxy) -> None:
    assert await asyncio.to_thread(server.running) is True
    version = await asyncio.to_thread(server.version)
    assert b'"version"' in version


async def test_create_list_get_destroy(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    proxy = await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    assert proxy.name == "db" and proxy.enabled is True and proxy.upstream == tcp_server.address
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    listed = await asyncio.to_thread(server.proxies)
    assert list(listed) == ["db"] and listed["db"].listen == proxy.listen
    assert (await asyncio.to_thread(server.get_proxy, "db")).listen == proxy.listen
    assert await asyncio.to_thread(server.get_proxy, "other") is None
    assert await asyncio.to_thread(server.destroy, proxy) is True
    assert await asyncio.to_thread(server.proxies) == {}


async def test_create_with_listen_and_disabled(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    proxy = await asyncio.to_thread(
        server.create, upstream=tcp_server.address, name="db", listen="127.0.0.1:0", enabled=False
    )
    assert proxy.enabled is False


async def test_proxy_exists(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    with pytest.raises(ProxyExists):
        await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    with pytest.raises(ProxyExists):  # the server's own 409, bypassing the package's check
        await asyncio.to_thread(
            APIConsumer.post, "/proxies", json={"name": "db", "upstream": tcp_server.address}
        )


async def test_disable_enable_and_down(
    server: toxiproxy.Toxiproxy, tcp_server: TcpServer, connections: Connections
) -> None:
    proxy = await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    reader, _ = await connections.open(proxy.listen)
    await asyncio.to_thread(proxy.disable)
    assert proxy.enabled is False
    assert await read_all(reader) == b""
    with pytest.raises(ConnectionRefusedError):
        await connections.open(proxy.listen)
    await asyncio.to_thread(proxy.enable)
    assert (await asyncio.to_thread(server.get_proxy, "db")).enabled is True

    def down_then_state() -> bool:
        with proxy.down():
            return bool(server.get_proxy("db").enabled)

    assert await asyncio.to_thread(down_then_state) is False
    reader, writer = await connections.open(proxy.listen)
    writer.write(b"up")
    assert await read_exactly(reader, 2) == b"up"


async def test_toxics_add_list_get_destroy(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    proxy = await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    await asyncio.to_thread(proxy.add_toxic, type="latency", attributes={"latency": 100})
    await asyncio.to_thread(
        proxy.add_toxic, name="cut", type="limit_data", stream="upstream", toxicity=0.5, attributes={"bytes": 10}
    )
    toxics = await asyncio.to_thread(proxy.toxics)
    assert set(toxics) == {"latency_downstream", "cut"}
    cut = await asyncio.to_thread(proxy.get_toxic, "cut")
    assert (cut.type, cut.stream, cut.toxicity, cut.attributes) == ("limit_data", "upstream", 0.5, {"bytes": 10})
    assert await asyncio.to_thread(proxy.get_toxic, "nope") is None
    assert await asyncio.to_thread(proxy.destroy_toxic, "cut") is True
    assert set(await asyncio.to_thread(proxy.toxics)) == {"latency_downstream"}


async def test_invalid_toxic_and_not_found(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    proxy = await asyncio.to_thread(server.create, upstream=tcp_server.address, name="db")
    with pytest.raises(InvalidToxic):
        await asyncio.to_thread(proxy.add_toxic, type="bogus")
    with pytest.raises(InvalidToxic):
        await asyncio.to_thread(proxy.add_toxic, type="latency", stream="sideways")
    with pytest.raises(NotFound):
        await asyncio.to_thread(proxy.destroy_toxic, "nope")
    await asyncio.to_thread(proxy.destroy)
    with pytest.raises(NotFound):
        await asyncio.to_thread(proxy.toxics)
    with pytest.raises(NotFound):
        await asyncio.to_thread(proxy.destroy)


async def test_reset_and_destroy_all(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    first = await asyncio.to_thread(server.create, upstream=tcp_server.address, name="a")
    await asyncio.to_thread(server.create, upstream=tcp_server.address, name="b")
    await asyncio.to_thread(first.add_toxic, type="timeout")
    await asyncio.to_thread(first.disable)
    assert await asyncio.to_thread(server.reset) is True
    proxies = await asyncio.to_thread(server.proxies)
    assert proxies["a"].enabled is True
    assert await asyncio.to_thread(proxies["a"].toxics) == {}
    await asyncio.to_thread(server.destroy_all)
    assert await asyncio.to_thread(server.proxies) == {}


async def test_populate(server: toxiproxy.Toxiproxy, tcp_server: TcpServer) -> None:
    created = await asyncio.to_thread(
        server.populate,
        [
            {"name": "a", "upstream": tcp_server.address, "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": tcp_server.address, "listen": "127.0.0.1:0"},
        ],
    )
    assert sorted(proxy.name for proxy in created) == ["a", "b"]
    assert set(await asyncio.to_thread(server.proxies)) == {"a", "b"}
