"""The recorder: subscribes to one cluster's events and appends them to a JSON-lines event log.

One line per event, in arrival order, with its receive time: `{"recv_ts": <unix float>, "topic":
"shardsim/...", "event": {payload}}`, flushed after every line, so a crash leaves a readable log. Tests and
scripts use it to keep the raw events of a cluster and to wait for one (`wait_event`).

It is not what writes a scenario run's history: the runner's `EventPump` (cluster/runner/events.py) reads
the bus itself and puts every event into the history (cluster/history.py), beside the client operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from cluster.events.subscriber import events_stream
from node.eventbus import parse_mqtt_url

SUBSCRIBE_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Recorder:
    """Records `shardsim/{cluster}/#` to a JSON-lines file for the life of an `async with` block.

    Entering waits (at most 5 s) until the subscription is in place, so events published afterwards are
    recorded; if the broker is not up yet it goes on and keeps trying in the background.
    """

    def __init__(self, mqtt_url: str, cluster: str, path: Path) -> None:
        parse_mqtt_url(mqtt_url)
        self._mqtt_url = mqtt_url
        self._cluster = cluster
        self._path = path
        self._events: list[Event] = []
        self._arrival = asyncio.Event()
        self._subscribed_count = 0
        self._subscribed = asyncio.Event()
        self._file: IO[str] | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def events(self) -> list[Event]:
        """The payload dicts recorded so far, in arrival order (a copy)."""
        return list(self._events)

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> Recorder:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._path.open("a", encoding="utf-8")
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._runner = self._task_group.create_task(self._record(), name=f"recorder {self._cluster}")
        try:
            await self.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            log.warning("recorder not subscribed to %s after %.0f s; still trying", self._mqtt_url,
                        SUBSCRIBE_TIMEOUT_S)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._runner is not None:
            self._runner.cancel()
        if self._task_group is not None:
            task_group, self._task_group = self._task_group, None
            await task_group.__aexit__(None, None, None)
        if self._file is not None:
            self._file.close()
            self._file = None

    async def wait_subscribed(self, timeout_s: float, times: int = 1) -> None:
        """Wait until the subscription was established `times` times in all; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while self._subscribed_count < times:
                self._subscribed.clear()
                await self._subscribed.wait()

    async def wait_event(self, predicate: Callable[[Event], bool], timeout_s: float) -> Event:
        """The first recorded event (already recorded or still to come) for which `predicate` is true.

        Raises TimeoutError when none arrives within `timeout_s`.
        """
        index = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for event in self._events[index:]:
                        if predicate(event):
                            return event
                    index = len(self._events)
                    self._arrival.clear()
                    await self._arrival.wait()
        except TimeoutError:
            raise TimeoutError(f"no matching event within {timeout_s} s ({len(self._events)} recorded)") from None

    def _on_subscribed(self) -> None:
        self._subscribed_count += 1
        self._subscribed.set()

    async def _record(self) -> None:
        stream = events_stream(self._mqtt_url, self._cluster, on_subscribed=self._on_subscribed)
        async with contextlib.aclosing(stream):
            async for received in stream:
                self._append(received)

    def _append(self, received: Event) -> None:
        topic = received.pop("topic")
        recv_ts = received.pop("recv_ts")
        assert self._file is not None, "recorder file is open while recording"
        self._file.write(json.dumps({"recv_ts": recv_ts, "topic": topic, "event": received}) + "\n")
        self._file.flush()
        self._events.append(received)
        self._arrival.set()
