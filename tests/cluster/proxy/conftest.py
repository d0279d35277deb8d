"""Fixtures of the fault proxy tests: a running `ProxyServer`, our client, a test TCP server, sockets.

Everything is on real sockets on 127.0.0.1 with ports chosen by the kernel, and every server, connection
and client opened here is closed by the fixture, also when the test fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster.proxy.client import ToxiproxyClient
from cluster.proxy.server import ProxyServer

IO_TIMEOUT_S = 5.0


class TcpServer:
    """An echo server on 127.0.0.1 that counts the bytes each connection sent it and notes closes."""

    def __init__(self) -> None:
        self.received_bytes: list[int] = []
        self.connection_closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> TcpServer:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=IO_TIMEOUT_S)
        await self._server.wait_closed()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        index = len(self.received_bytes)
        self.received_bytes.append(0)
        try:
            while data := await reader.read(65536):
                self.received_bytes[index] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._handlers.discard(task)
            self.connection_closed.set()


class Connections:
    """Opens client connections to `host:port` addresses and closes them all at teardown."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = address.rsplit(":", 1)
        async with asyncio.timeout(IO_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, int(port))
        self._writers.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            try:
                async with asyncio.timeout(IO_TIMEOUT_S):
                    await writer.wait_closed()
            except (ConnectionError, OSError, TimeoutError):
                pass


@pytest.fixture
async def proxy_server() -> AsyncIterator[ProxyServer]:
    async with ProxyServer(port=0) as server:
        yield server


@pytest.fixture
async def client(proxy_server: ProxyServer) -> AsyncIterator[ToxiproxyClient]:
    async with ToxiproxyClient(proxy_server.url) as toxiproxy:
        yield toxiproxy


@pytest.fixture
async def tcp_server() -> AsyncIterator[TcpServer]:
    async with TcpServer() as server:
        yield server


@pytest.fixture
async def connections() -> AsyncIterator[Connections]:
    opened = Connections()
    try:
        yield opened
    finally:
        await opened.close()


async def read_exactly(reader: asyncio.StreamReader, count: int, timeout_s: float = IO_TIMEOUT_S) -> bytes:
    async with asyncio.timeout(timeout_s):
        return await reader.readexactly(count)


async def read_all(reader: asyncio.StreamReader, timeout_s: float = IO_TIMEOUT_S) -> bytes:
    """Everything until the end of stream."""
    async with asyncio.timeout(timeout_s):
        return await reader.read()
