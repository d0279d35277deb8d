"""A TCP gate for tests: forwards 127.0.0.1:port to a broker while open, refuses connections while closed.

The broker-outage test puts it between the publisher and the broker, so it decides when the publisher may
reconnect (after the recorder has subscribed again) and the flushed events can be checked one by one.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.processes import free_port

CONNECT_TIMEOUT_S = 2.0
CHUNK_BYTES = 65536


class TcpGate:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}

    async def open(self) -> None:
        assert self._server is None, "gate already open"
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writers in self._connections.values():
            for writer in writers:
                writer.close()  # the pipes see the end and the handlers return (cancelling them is not safe)
        handlers = set(self._connections)
        if handlers:
            await asyncio.wait(handlers, timeout=CONNECT_TIMEOUT_S)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        writers = [client_writer]
        self._connections[task] = writers
        try:
            broker_reader, broker_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self._target_port), CONNECT_TIMEOUT_S)
            writers.append(broker_writer)
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_pipe(client_reader, broker_writer))
                pipes.create_task(_pipe(broker_reader, client_writer))
        except* (OSError, TimeoutError):
            pass
        finally:
            self._connections.pop(task, None)
            for writer in writers:
                writer.close()
            for writer in writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(CHUNK_BYTES):
        writer.write(chunk)
        await writer.drain()
    raise ConnectionResetError("peer closed")  # closing one direction closes the other
