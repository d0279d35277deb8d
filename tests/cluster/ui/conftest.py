"""Fixtures of the UI tests: a broker, the UI server, publishers, and one headless Chromium per module."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from cluster.events.broker import EmbeddedBroker
from cluster.ui import UiServer
from node.eventbus import EventPublisher
from tests.cluster.ui.chromium import chromium_path, chromium_start, chromium_stop
from tests.cluster.ui.devtools import DevToolsPage, wait_devtools_ready
from tests.processes import free_port

CLUSTER = "ui-test"


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as running:
        yield running


@pytest.fixture
async def ui(broker: EmbeddedBroker) -> AsyncIterator[UiServer]:
    async with UiServer(broker.url, CLUSTER) as server:
        yield server


@pytest.fixture
async def coordinator_events(broker: EmbeddedBroker) -> AsyncIterator[EventPublisher]:
    async with EventPublisher(broker.url, CLUSTER, "coordinator") as publisher:
        yield publisher


@pytest.fixture
async def nemesis_events(broker: EmbeddedBroker) -> AsyncIterator[EventPublisher]:
    async with EventPublisher(broker.url, CLUSTER, "nemesis") as publisher:
        yield publisher


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A headless Chromium for the module; yields its DevTools port; stopped by PID whatever happens."""
    chromium_path()  # skip (or fail under CI) before making directories
    base = tmp_path_factory.mktemp("chromium")
    port = free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        process = chromium_start(base / "profile", port, base / "chromium.log")
        yield port
    finally:
        if process is not None:
            chromium_stop(process)


@pytest.fixture
async def page(chromium: int) -> AsyncIterator[DevToolsPage]:
    """A fresh tab in the module's Chromium, closed afterwards."""
    async with aiohttp.ClientSession() as session:
        await wait_devtools_ready(session, chromium)
        async with DevToolsPage(session, chromium) as opened:
            yield opened
