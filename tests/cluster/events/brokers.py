"""Brokers the event-bus tests (and the external-mode test) run against, behind one start/stop interface:
embedded amqtt and mosquitto.

Both listen on 127.0.0.1 on a port chosen once, so a test can stop a broker and start it again on the same
port (a broker outage). mosquitto runs as a child process with a temporary configuration and is always
stopped by its PID. When mosquitto is missing the mosquitto tests skip, except under CI (`CI` set), where
they fail: the CI machine must have it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Protocol

import pytest

from cluster.events.broker import EmbeddedBroker
from tests.processes import free_port, wait_port_open

BROKER_START_TIMEOUT_S = 10.0
BROKER_STOP_TIMEOUT_S = 5.0
MOSQUITTO_PATHS = ("mosquitto", "/usr/sbin/mosquitto")


class BrokerControl(Protocol):
    name: str
    port: int

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def tool_path(names: tuple[str, ...], package: str) -> str:
    """The path of a broker tool; skip the test without it, or fail it under CI."""
    for name in names:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    message = f"{names[0]} not found: apt-get install -y {package}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required under CI)")
    pytest.skip(message)


class AmqttControl:
    name = "amqtt"

    def __init__(self) -> None:
        self.port = free_port()
        self._broker: EmbeddedBroker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        broker = EmbeddedBroker(self.port)
        await broker.__aenter__()
        self._broker = broker

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.__aexit__(None, None, None)


class MosquittoControl:
    name = "mosquitto"

    def __init__(self, directory: Path) -> None:
        self._binary = tool_path(MOSQUITTO_PATHS, "mosquitto")
        self.port = free_port()
        self._config_path = directory / "mosquitto.conf"
        self._log_path = directory / "mosquitto.log"
        self._config_path.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                                     "max_queued_messages 0\npersistence false\n")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self._log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                self._binary, "-c", str(self._config_path), stdout=log_file, stderr=log_file)
        await wait_port_open(self.port, BROKER_START_TIMEOUT_S, self._process)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), BROKER_STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

