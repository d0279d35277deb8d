"""Reading the event bus: an async iterator over decoded events that reconnects by itself.

Used by the recorder, the `shardsim events` and `shardsim watch` commands, and by anyone who wants to react
to what happens (phase-keyed faults). It subscribes to `shardsim/{cluster}/#` (or `shardsim/#`) with QoS 1,
decodes each JSON payload, drops what is not a JSON object or not of the wanted kinds, and adds the `topic`
and the receive time `recv_ts`. When the broker goes away it reconnects with capped exponential backoff and
subscribes again; events published while it was away are lost (clean sessions, no persistence).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable
from typing import Any

import aiomqtt

from node import clock
from node.eventbus import TOPIC_ROOT, mqtt_client, parse_mqtt_url
from node.retry import Backoff

MQTT_URL_DEFAULT = "mqtt://127.0.0.1:1883"
CLUSTER_NAME_DEFAULT = "shardsim"
CONNECT_TIMEOUT_S = 5.0
RECONNECT_S_MIN = 0.05
RECONNECT_S_MAX = 2.0
RECONNECT_BACKOFF = Backoff(first_s=RECONNECT_S_MIN, factor=2.0, max_s=RECONNECT_S_MAX)
KEEPALIVE_S = 10
INCOMING_MESSAGES_MAX = 100_000

log = logging.getLogger(__name__)


def bus_args_add(parser: argparse.ArgumentParser, every_cluster: bool = False) -> None:
    """`--mqtt-url` and `--cluster-name` of the commands that read the bus (`events`, `watch`, `ui`), with
    defaults from `SHARDSIM_MQTT_URL` and `SHARDSIM_CLUSTER`. `--cluster`, their spelling before the one
    spelling of every command, is kept as a hidden alias so that older scripts still run."""
    parser.add_argument("--mqtt-url", default=os.environ.get("SHARDSIM_MQTT_URL") or MQTT_URL_DEFAULT,
                        metavar="URL", help=f"the broker (default: $SHARDSIM_MQTT_URL, else {MQTT_URL_DEFAULT})")
    every = ", '*' for every cluster" if every_cluster else ""
    parser.add_argument("--cluster-name", default=os.environ.get("SHARDSIM_CLUSTER") or CLUSTER_NAME_DEFAULT,
                        metavar="NAME",
                        help=f"whose events{every} (default: $SHARDSIM_CLUSTER, else {CLUSTER_NAME_DEFAULT})")
    parser.add_argument("--cluster", dest="cluster_name", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def topic_filter(cluster: str | None) -> str:
    """`shardsim/{cluster}/#`, or `shardsim/#` for every cluster."""
    return f"{TOPIC_ROOT}/#" if cluster is None else f"{TOPIC_ROOT}/{cluster}/#"


def event_decode(topic: str, payload: bytes | bytearray, recv_ts: float) -> dict[str, Any] | None:
    """The payload dict plus `topic` and `recv_ts`, or None when the payload is not a JSON object."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(event, dict):
        return None
    event["topic"] = topic
    event["recv_ts"] = recv_ts
    return event


async def events_stream(mqtt_url: str, cluster: str | None = None, kinds: set[str] | None = None,
                        on_subscribed: Callable[[], None] | None = None) -> AsyncGenerator[dict[str, Any], None]:
    """Yield every event of `cluster` (all clusters when None) whose kind is in `kinds` (all when None).

    `on_subscribed` is called each time a subscription is in place (first connect and every reconnect).
    Close the iterator (`contextlib.aclosing`) to disconnect promptly.
    """
    host, port = parse_mqtt_url(mqtt_url)
    identifier = f"shardsim-sub-{clock.uuid4().hex[:8]}"
    failures = 0  # since the last subscription
    while True:
        try:
            async with mqtt_client(host, port, identifier=identifier, timeout=CONNECT_TIMEOUT_S,
                                   keepalive=KEEPALIVE_S,
                                   max_queued_incoming_messages=INCOMING_MESSAGES_MAX) as client:
                await client.subscribe(topic_filter(cluster), qos=1)
                failures = 0
                if on_subscribed is not None:
                    on_subscribed()
                async for message in client.messages:
                    event = event_decode(str(message.topic), _payload_bytes(message.payload), clock.now())
                    if event is None:
                        log.warning("ignoring a non-JSON event on %s", message.topic)
                    elif kinds is None or event.get("kind") in kinds:
                        yield event
        except (aiomqtt.MqttError, OSError) as error:
            log.info("event stream from %s:%d lost (%s); reconnecting in %.2f s", host, port, error,
                     RECONNECT_BACKOFF.wait_s(failures + 1))
        failures += 1
        await asyncio.sleep(RECONNECT_BACKOFF.wait_s(failures))


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return str(payload).encode()
