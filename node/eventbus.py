"""The event publisher: puts everything that happens on the MQTT event bus, without ever blocking.

Nodes, the coordinator, the launcher, the nemesis and the client harness all publish through this one class
(docs/events.md), so it imports nothing from `node/` or `cluster/` but the waits of `node.retry` and the
clock of `node.clock`.
Topics are `shardsim/{cluster}/{source}/{kind}` and payloads are JSON objects
`{"ts", "source", "kind", ...fields}`, readable with `mosquitto_sub -t 'shardsim/#' -v`. Delivery is QoS 1
(at least once).

`EventPublisher.publish` is synchronous and cheap: it encodes the event and puts it on a bounded queue; when
the queue is full the event is dropped and counted. One background task, owned by a `TaskGroup` that lives
as long as the `async with` block, connects to the broker, drains the queue in order (a window of messages
in flight at once) and, when the broker goes away, keeps the unconfirmed messages at the head of the line,
reconnects with exponential backoff (capped at `reconnect_s_max`) and flushes them first. Errors of
aiomqtt/paho never leave this module: the publisher logs them and retries.
"""

from __future__ import annotations

import asyncio
import json
import keyword
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from node import clock
from node.retry import Backoff

TOPIC_ROOT = "shardsim"
MQTT_PORT_DEFAULT = 1883
MQTT_QOS = 1
RECONNECT_S_MIN = 0.05
CONNECT_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 5.0
FLUSH_TIMEOUT_S = 2.0
INFLIGHT_MESSAGES_MAX = 64
KEEPALIVE_S = 10
RESERVED_FIELDS = frozenset({"source", "kind"})

log = logging.getLogger(__name__)

Message = tuple[str, bytes]
_client_factory: Callable[..., Any] = aiomqtt.Client


def mqtt_client(hostname: str, port: int, **options: Any) -> aiomqtt.Client:
    """A client of the broker at `hostname:port`, made the one way the publisher and `events_stream` make
    theirs: aiomqtt's, or what a simulation installed instead (its in-memory bus, cluster/sim/bus.py)."""
    client: aiomqtt.Client = _client_factory(hostname, port, **options)
    return client


def mqtt_client_factory_install(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Make `factory` (aiomqtt.Client's signature) what `mqtt_client` calls; returns the one it replaces."""
    global _client_factory
    previous, _client_factory = _client_factory, factory
    return previous


def topic_for(cluster: str, source: str, kind: str) -> str:
    """Return the topic `shardsim/{cluster}/{source}/{kind}`; raise ValueError on an unusable part."""
    _check_topic_part("cluster", cluster, slashes_max=0)
    _check_topic_part("source", source, slashes_max=1)
    _check_topic_part("kind", kind, slashes_max=0)
    return f"{TOPIC_ROOT}/{cluster}/{source}/{kind}"


def _check_topic_part(what: str, value: str, slashes_max: int) -> None:
    if not value or any(char in value for char in "+#\x00") or value.count("/") > slashes_max:
        raise ValueError(f"event {what} {value!r} cannot be a topic level: no '+', '#', empty part or extra '/'")
    if any(not level for level in value.split("/")):
        raise ValueError(f"event {what} {value!r} has an empty topic level")


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """Parse `mqtt://host:port` (port defaults to 1883) into `(host, port)`; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"MQTT url {url!r} is not of the form mqtt://host:port")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"MQTT url {url!r} has a bad port: {error}") from None
    return parts.hostname, port if port is not None else MQTT_PORT_DEFAULT


def payload_encode(source: str, kind: str, fields: Mapping[str, Any]) -> bytes:
    """Encode one event as JSON bytes: envelope first, then the fields (`ts` may be given by the caller).

    A field named like a Python keyword plus `_` (`from_`) is renamed to the keyword (`from`), so callers
    can write `publish("replica.state", from_="Active", to="Dead")`.
    """
    payload: dict[str, Any] = {"ts": clock.now(), "source": source, "kind": kind}
    for name, value in fields.items():
        if name.endswith("_") and keyword.iskeyword(name[:-1]):
            name = name[:-1]
        if name not in RESERVED_FIELDS:
            payload[name] = value
    return json.dumps(payload, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class EventPublisher:
    """Publishes events to `shardsim/{cluster}/{source}/{kind}`; an async context manager.

    `publish` never blocks and never raises. With `mqtt_url=None` the publisher is off: every event is
    counted in `dropped_count` and nothing connects. Call `publish` from the event loop's thread only.
    """

    def __init__(self, mqtt_url: str | None, cluster: str, source: str, queue_size: int = 10_000,
                 reconnect_s_max: float = 5.0) -> None:
        assert queue_size > 0, "queue_size must be positive"
        assert reconnect_s_max > 0, "reconnect_s_max must be positive"
        topic_for(cluster, source, "check")
        self._address = parse_mqtt_url(mqtt_url) if mqtt_url is not None else None
        self._cluster = cluster
        self._source = source
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        self._inflight: list[Message] = []
        self._reconnect_s_max = reconnect_s_max
        self._reconnect = Backoff(first_s=RECONNECT_S_MIN, factor=2.0, max_s=reconnect_s_max)
        self._identifier = f"shardsim-{source.replace('/', '-')}-{clock.uuid4().hex[:8]}"
        self._dropped_count = 0
        self._published_count = 0
        self._connected = False
        self._unreachable = asyncio.Event()  # set while the last connection attempt failed
        self._task_group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def dropped_count(self) -> int:
        """Events not sent: queue full, publisher off (no url), or not encodable."""
        return self._dropped_count

    @property
    def published_count(self) -> int:
        """Events the broker acknowledged (QoS 1 PUBACK)."""
        return self._published_count

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued_count(self) -> int:
        """Events waiting to be sent or confirmed."""
        return self._queue.qsize() + len(self._inflight)

    def publish(self, kind: str, /, **fields: Any) -> None:
        """Queue one event; drop it (counted) when the queue is full or the publisher is off."""
        if self._address is None:
            self._dropped_count += 1
            return
        try:
            message = (topic_for(self._cluster, self._source, kind), payload_encode(self._source, kind, fields))
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._dropped_count += 1
        except Exception:  # noqa: BLE001 - publish must never raise into a request handler
            self._dropped_count += 1
            log.exception("event %r from %s could not be encoded; dropped", kind, self._source)

    async def __aenter__(self) -> EventPublisher:
        if self._address is not None:
            self._task_group = asyncio.TaskGroup()
            await self._task_group.__aenter__()
            self._runner = self._task_group.create_task(self._run(), name=f"event-publisher {self._source}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._task_group is None or self._runner is None:
            return
        await self._wait_flushed(FLUSH_TIMEOUT_S)
        self._runner.cancel()
        task_group, self._task_group = self._task_group, None
        await task_group.__aexit__(None, None, None)
        self._connected = False

    async def _wait_flushed(self, timeout_s: float) -> None:
        """Give queued events a bounded chance to go out; stop early once a connection attempt fails."""
        if self._unreachable.is_set():
            return
        async with asyncio.TaskGroup() as waiters:
            flushed = waiters.create_task(self._queue.join(), name="event-publisher flushed")
            unreachable = waiters.create_task(self._unreachable.wait(), name="event-publisher unreachable")
            await asyncio.wait((flushed, unreachable), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            flushed.cancel()
            unreachable.cancel()

    async def _run(self) -> None:
        """Connect, drain, and on any failure reconnect with capped exponential backoff, forever."""
        assert self._address is not None
        failures = 0  # since the last connection
        was_connected = True
        while True:
            try:
                await self._session()
            except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                if was_connected:
                    log.warning("event bus %s:%d unreachable (%s); queueing, retrying up to every %.1f s",
                                *self._address, group.exceptions[0], self._reconnect_s_max)
            except* Exception:  # noqa: BLE001 - the background task must outlive any library bug
                log.exception("event publisher session failed; reconnecting")
            was_connected = self._connected
            if self._connected:
                failures = 0
            failures += 1
            self._connected = False
            self._unreachable.set()
            await asyncio.sleep(self._reconnect.wait_s(failures))

    async def _session(self) -> None:
        """One connection: drain the queue until the broker goes away (raises an MQTT error then)."""
        assert self._address is not None
        host, port = self._address
        client = mqtt_client(host, port, identifier=self._identifier, timeout=CONNECT_TIMEOUT_S,
                             keepalive=KEEPALIVE_S, max_inflight_messages=INFLIGHT_MESSAGES_MAX)
        client.pending_calls_threshold = INFLIGHT_MESSAGES_MAX + 1  # a full window is normal, not a warning
        async with client:
            self._connected = True
            self._unreachable.clear()
            log.info("event bus connected: %s:%d as %s", host, port, self._identifier)
            async with asyncio.TaskGroup() as session_tasks:
                session_tasks.create_task(_wait_disconnected(client))
                session_tasks.create_task(self._drain(client))

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Send the unconfirmed messages first, then whatever the queue holds, in order, forever."""
        while True:
            if not self._inflight:
                self._inflight.append(await self._queue.get())
                while len(self._inflight) < INFLIGHT_MESSAGES_MAX and not self._queue.empty():
                    self._inflight.append(self._queue.get_nowait())
            await self._send_inflight(client)

    async def _send_inflight(self, client: aiomqtt.Client) -> None:
        """Publish the in-flight window concurrently (paho keeps wire order); keep what was not confirmed."""
        confirmed = [False] * len(self._inflight)

        async def send_one(index: int, topic: str, payload: bytes) -> None:
            await client.publish(topic, payload, qos=MQTT_QOS, timeout=PUBLISH_TIMEOUT_S)
            confirmed[index] = True

        try:
            async with asyncio.TaskGroup() as sends:
                for index, (topic, payload) in enumerate(self._inflight):
                    sends.create_task(send_one(index, topic, payload))
        finally:
            self._published_count += sum(confirmed)
            for _ in range(sum(confirmed)):
                self._queue.task_done()
            self._inflight = [message for message, done in zip(self._inflight, confirmed, strict=True)
                              if not done]


async def _wait_disconnected(client: aiomqtt.Client) -> None:
    """Return only by raising: aiomqtt's message iterator raises MqttError when the connection drops."""
    async for _message in client.messages:
        pass  # the publisher subscribes to nothing; any stray message is ignored
    raise aiomqtt.MqttError("event bus message stream ended")
