"""The runner's view of the event bus: every event into the history, waits, and phase-keyed triggers.

One task (owned by the pump's TaskGroup) reads the cluster's events from MQTT, writes each into the history
as it arrives, wakes whoever waits for an event, and fires armed triggers. A trigger is a predicate over
events and an action (usually a nemesis fault): "when the stream of shard 0 passes 60 %, cut the link".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cluster.events.subscriber import events_stream
from cluster.history import HistoryWriter

log = logging.getLogger("shardsim.runner")
Event = dict[str, Any]
Predicate = Callable[[Event], bool]


@dataclass
class Trigger:
    name: str
    when: Predicate
    action: Callable[[Event], Awaitable[Any]]
    times: int = 1
    fired: int = 0


class EventPump:
    def __init__(self, mqtt_url: str, cluster: str, history: HistoryWriter,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.mqtt_url = mqtt_url
        self.cluster = cluster
        self.history = history
        self.on_event = on_event
        self.events: list[Event] = []
        self.arrival = asyncio.Condition()
        self.subscribed = asyncio.Event()
        self.triggers: list[Trigger] = []
        self.trigger_errors: list[str] = []
        self.tasks: asyncio.TaskGroup | None = None
        self.reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventPump:
        self.tasks = asyncio.TaskGroup()
        await self.tasks.__aenter__()
        self.reader = self.tasks.create_task(self._read(), name="event-pump")
        try:
            await asyncio.wait_for(self.subscribed.wait(), 10.0)
        except TimeoutError:
            log.warning("event bus at %s not subscribed after 10 s; events may be missing", self.mqtt_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.tasks is not None:
            tasks, self.tasks = self.tasks, None
            await tasks.__aexit__(None, None, None)

    async def _read(self) -> None:
        stream = events_stream(self.mqtt_url, self.cluster, on_subscribed=self.subscribed.set)
        async with contextlib.aclosing(stream):
            async for event in stream:
                event.pop("topic", None)
                event.pop("recv_ts", None)
                self.history.event(event)
                self.events.append(event)
                if self.on_event is not None:
                    self.on_event(event)
                self._triggers_fire(event)
                async with self.arrival:
                    self.arrival.notify_all()

    def _triggers_fire(self, event: Event) -> None:
        for trigger in list(self.triggers):
            if trigger.fired >= trigger.times:
                continue
            try:
                matched = trigger.when(event)
            except Exception as error:  # a scenario's predicate is user code: report, do not crash the pump
                self.trigger_errors.append(f"trigger {trigger.name}: predicate failed: {error}")
                continue
            if matched and self.tasks is not None:
                trigger.fired += 1
                self.tasks.create_task(self._action(trigger, event), name=f"trigger {trigger.name}")

    async def _action(self, trigger: Trigger, event: Event) -> None:
        try:
            await trigger.action(event)
        except Exception as error:
            self.trigger_errors.append(f"trigger {trigger.name}: action failed: {type(error).__name__}: {error}")
            log.exception("trigger %s failed", trigger.name)

    def arm(self, name: str, when: Predicate, action: Callable[[Event], Awaitable[Any]], times: int = 1) -> Trigger:
        trigger = Trigger(name, when, action, times)
        self.triggers.append(trigger)
        return trigger

    async def wait_event(self, when: Predicate, timeout_s: float, since: int = 0) -> Event:
        """The first event (from index `since`, already received or still to come) matching `when`."""
        async def found() -> Event:
            index = since
            async with self.arrival:
                while True:
                    for event in self.events[index:]:
                        if when(event):
                            return event
                    index = len(self.events)
                    await self.arrival.wait()
        return await asyncio.wait_for(found(), timeout_s)


# --- predicates for phase-keyed faults ---------------------------------------------------------------------

def at_stream_fraction(fraction: float, collection: str | None = None, shard: int | None = None,
                       attempt: int | None = None) -> Predicate:
    """A transfer's snapshot stream has passed `fraction` of its bytes."""
    def when(event: Event) -> bool:
        if event.get("kind") != "transfer.phase" or event.get("phase") != "streaming":
            return False
        if not transfer_matches(event, collection, shard) or (attempt is not None and event.get("attempt") != attempt):
            return False
        total = event.get("bytes_total") or 0
        return bool(total) and (event.get("bytes") or 0) >= fraction * total
    return when


def at_phase(phase: str, collection: str | None = None, shard: int | None = None,
             attempt: int | None = None) -> Predicate:
    """A transfer reached a phase: queue_installed, streaming, streamed, restored, queued, partial,
    queue_replayed, finished, attempt_failed."""
    def when(event: Event) -> bool:
        if not event.get("kind", "").startswith("transfer.") or event.get("phase") != phase:
            return False
        return transfer_matches(event, collection, shard) and (attempt is None or event.get("attempt") == attempt)
    return when


def at_queued(count: int, collection: str | None = None, shard: int | None = None) -> Predicate:
    """The source has queued at least `count` updates for the target."""
    def when(event: Event) -> bool:
        return event.get("kind") == "transfer.phase" and transfer_matches(event, collection, shard) and \
            (event.get("queued") or 0) >= count
    return when


def transfer_matches(event: Event, collection: str | None, shard: int | None) -> bool:
    return (collection is None or event.get("collection") == collection) and \
        (shard is None or event.get("shard") == shard)
