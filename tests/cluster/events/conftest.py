"""Fixtures of the event-bus tests: a running broker of each kind, always stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.events.brokers import AmqttControl, BrokerControl, MosquittoControl


@pytest.fixture(params=["amqtt", "mosquitto"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerControl]:
    control: BrokerControl = AmqttControl() if request.param == "amqtt" else MosquittoControl(tmp_path)
    try:
        await control.start()
        yield control
    finally:
        await control.stop()


@pytest.fixture
async def amqtt_broker() -> AsyncIterator[BrokerControl]:
    control = AmqttControl()
    try:
        await control.start()
        yield control
    finally:
        await control.stop()
