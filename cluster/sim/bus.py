"""The event bus of a simulated run: an in-memory MQTT broker and a client with aiomqtt's surface.

The publisher (`node.eventbus.EventPublisher`) and the subscriber (`cluster.events.subscriber.events_stream`,
so the runner's `EventPump`) run unchanged: they make their clients through `node.eventbus.mqtt_client`,
which gives a `SimMqttClient` while a `SimBus` is installed. Topics and payloads are the same bytes as over
MQTT. Delivery takes a seeded latency, keeps each publisher's order towards each subscriber (as one MQTT
connection does), and costs no real I/O.

A broker outage (`outage_start` / `outage_end`) is what a dead broker is to aiomqtt: every connection drops
(the message iterators raise `MqttError`), publishes and connects fail until it is back, and what was on its
way through the broker is lost; the publishers queue and reconnect with their backoff, as over MQTT. A host
killed with SIGKILL loses its connections (`host_killed`), and what its publisher still held is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiomqtt

from cluster.sim import engine
from node import eventbus

BUS_HOST = "bus"
BUS_URL = f"mqtt://{BUS_HOST}:1883"
LATENCY_S = (0.0005, 0.003)  # publisher -> broker -> subscriber
INCOMING_MESSAGES_MAX = 100_000  # a client's queue of received messages, unless it asks for another bound


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: `+` is one level, a final `#` is any number of levels (zero included)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(wanted) == len(levels)


class SimBus:
    """The broker: the connected clients, their subscriptions, delivery with latency, and outages."""

    def __init__(self, loop: engine.SimEngine, seed: int) -> None:
        self.loop = loop
        self.rng = random.Random(f"{seed}:bus")
        self.up = True
        self.outages = 0
        self.clients: dict[int, SimMqttClient] = {}  # connected, by client number (insertion order)
        self.numbers = itertools.count(1)
        self.delivered_at: dict[tuple[int, int], float] = {}  # (publisher, subscriber) -> last delivery time
        self.published_count = 0

    # -- broker side -------------------------------------------------------------------------------------
    def attach(self, client: SimMqttClient) -> None:
        if not self.up:
            raise aiomqtt.MqttError(f"[code:3] connection to {BUS_URL} refused: the broker is down")
        self.clients[client.number] = client

    def detach(self, client: SimMqttClient) -> None:
        self.clients.pop(client.number, None)

    def publish(self, sender: SimMqttClient, topic: str, payload: bytes) -> None:
        self.published_count += 1
        now = self.loop.time()
        for client in list(self.clients.values()):
            if not any(topic_matches(pattern, topic) for pattern in client.subscriptions):
                continue
            pair = (sender.number, client.number)
            due = max(now + self.rng.uniform(*LATENCY_S), self.delivered_at.get(pair, 0.0))
            self.delivered_at[pair] = due
            self.loop.call_on(client.host, due - now, self._deliver, client, self.outages, topic, payload)

    def _deliver(self, client: SimMqttClient, outages: int, topic: str, payload: bytes) -> None:
        if outages != self.outages or client.number not in self.clients:
            return  # the broker died meanwhile, or the subscriber left
        client.message_arrived(aiomqtt.Message(topic, payload, qos=1, retain=False, mid=0, properties=None))

    # -- faults ------------------------------------------------------------------------------------------
    def outage_start(self) -> None:
        """The broker goes away: every connection drops, nothing is delivered or accepted until `outage_end`."""
        if not self.up:
            return
        self.up = False
        self.outages += 1
        for client in list(self.clients.values()):
            client.connection_lost(aiomqtt.MqttError("the broker went away (simulated outage)"))
        self.clients.clear()

    def outage_end(self) -> None:
        self.up = True

    def host_killed(self, host: str) -> None:
        """The process on `host` died: the broker sees its connections close."""
        for client in [c for c in self.clients.values() if c.host == host]:
            self.detach(client)


_installed: SimBus | None = None


def current() -> SimBus:
    """The installed bus (inside `installed`)."""
    assert _installed is not None, "no simulated bus is installed (cluster.sim.bus.installed)"
    return _installed


@contextlib.contextmanager
def installed(bus: SimBus) -> Iterator[SimBus]:
    """Every MQTT client made through `node.eventbus.mqtt_client` in this block talks to `bus`."""
    global _installed
    previous_bus, _installed = _installed, bus
    previous_factory = eventbus.mqtt_client_factory_install(SimMqttClient)
    try:
        yield bus
    finally:
        eventbus.mqtt_client_factory_install(previous_factory)
        _installed = previous_bus


class SimMqttClient:
    """What `EventPublisher` and `events_stream` use of `aiomqtt.Client`, over the installed `SimBus`."""

    def __init__(self, hostname: str, port: int = 1883, **options: Any) -> None:
        assert _installed is not None, "no simulated bus is installed (cluster.sim.bus.installed)"
        self.bus = _installed
        self.address = f"{hostname}:{port}"
        self.number = next(self.bus.numbers)
        self.host = engine.current_host()
        self.pending_calls_threshold = 10  # aiomqtt's attribute; nothing is ever pending here
        self.subscriptions: list[str] = []
        self.connected = False
        self._incoming: deque[aiomqtt.Message] = deque()
        self.incoming_max = int(options.get("max_queued_incoming_messages") or INCOMING_MESSAGES_MAX)
        self.dropped_count = 0  # received while the queue was full (aiomqtt drops them too)
        self._error: aiomqtt.MqttError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.messages = _Messages(self)

    async def __aenter__(self) -> SimMqttClient:
        if not self.address.startswith(f"{BUS_HOST}:"):
            raise aiomqtt.MqttError(f"[Errno -2] no broker at {self.address} in the simulation (it is {BUS_URL})")
        await asyncio.sleep(2 * self.bus.rng.uniform(*LATENCY_S))  # CONNECT and CONNACK
        self.bus.attach(self)
        self.connected = True
        self._error = None
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.bus.detach(self)
        self.connected = False

    def _check(self) -> None:
        if not self.connected:
            raise self._error or aiomqtt.MqttError("Operation not permitted: not connected")

    async def subscribe(self, topic: str, qos: int = 0, **options: Any) -> None:
        self._check()
        self.subscriptions.append(topic)

    async def publish(self, topic: str, payload: bytes | str | None = None, qos: int = 0, retain: bool = False,
                      **options: Any) -> None:
        self._check()
        data = payload.encode() if isinstance(payload, str) else (payload or b"")
        self.bus.publish(self, topic, data)

    # -- called by the bus -------------------------------------------------------------------------------
    def message_arrived(self, message: aiomqtt.Message) -> None:
        if len(self._incoming) >= self.incoming_max:
            self.dropped_count += 1
            return
        self._incoming.append(message)
        self._wake()

    def connection_lost(self, error: aiomqtt.MqttError) -> None:
        self.connected = False
        self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next_message(self) -> aiomqtt.Message:
        while True:
            if self._incoming:
                return self._incoming.popleft()
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class _Messages:
    """`client.messages`: an async iterator that raises `MqttError` when the connection drops."""

    def __init__(self, client: SimMqttClient) -> None:
        self._client = client

    def __aiter__(self) -> AsyncIterator[aiomqtt.Message]:
        return self

    async def __anext__(self) -> aiomqtt.Message:
        return await self._client.next_message()
