"""The embedded MQTT broker: amqtt running inside this process, so one machine with only Python has a bus.

It runs unless `SHARDSIM_MQTT_URL` points at a real broker such as mosquitto (docs/design.md section 1).
It listens on 127.0.0.1 only, over plain TCP, with anonymous access, no $SYS topics and no logging plugins
(amqtt's defaults would add them). Nothing is persisted: a restarted broker starts empty, like mosquitto
with `persistence false`.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from amqtt.broker import Broker

from cluster.ports import port_for_process

BROKER_HOST = "127.0.0.1"

log = logging.getLogger(__name__)




def broker_config(port: int) -> dict[str, Any]:
    """amqtt 0.12 configuration: one TCP listener on 127.0.0.1:port, anonymous access, no other plugins."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{BROKER_HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class _ClosingBroker(Broker):
    """amqtt's broker, closing every client socket itself.

    amqtt 0.12 leaves an accepted socket open on some paths (a client gone before its CONNECT, a connection
    handler cancelled at shutdown); the socket is then garbage-collected with a ResourceWarning, which
    `-W error` turns into a failure. Closing each connection when its handler ends, and any left at
    shutdown, keeps the process clean without filtering warnings.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.client_writers: dict[asyncio.StreamWriter, None] = {}  # an insertion-ordered set

    async def stream_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               listener_name: str) -> None:
        self.client_writers[writer] = None
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self.client_writers.pop(writer, None)
            writer.close()

    def client_writers_close(self) -> None:
        for writer in list(self.client_writers):
            writer.close()
        self.client_writers.clear()


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1:port for the life of an `async with` block."""

    def __init__(self, port: int | None = None) -> None:
        self._port = port if port is not None else port_for_process(set())
        self._broker: _ClosingBroker | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{BROKER_HOST}:{self._port}"

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen (again, after `stop`: a broker outage ends); `async with` does it for you."""
        broker = _ClosingBroker(broker_config(self._port))
        await broker.start()
        self._broker = broker
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and drop every connection (a broker outage, when followed by `start`)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                await broker.shutdown()
            finally:
                broker.client_writers_close()
            log.info("embedded MQTT broker on %s stopped", self.url)
