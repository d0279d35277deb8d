"""The UI's memory of the bus: the last N events, numbered, plus a bounded queue per open page.

`EventBuffer.append` encodes an event once (JSON text) and numbers it; a page that connects is replayed what
the buffer holds and then follows new events through its `Subscription` queue. Everything is bounded: the
buffer forgets the oldest events beyond `events_max`, and a page that falls `queue_max` events behind is
cut off (`ended`), so the browser reconnects and resumes from the buffer instead of slowing the server.
Event ids are `{boot}-{seq}`: a page resuming after a restart of the UI server (another boot) or after a gap
larger than the buffer is told to start over. Pure, no I/O: tested with literal events.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from node import clock

EVENTS_MAX_DEFAULT = 5000
QUEUE_MAX_DEFAULT = 2000


@dataclass(frozen=True)
class BufferedEvent:
    seq: int
    data: str  # the event as one line of JSON


@dataclass
class Subscription:
    """One open page: new events arrive on `queue`; `ended` means stop streaming (shutdown or overflow)."""

    queue: asyncio.Queue[BufferedEvent | None]
    ended: bool = False
    overflowed: bool = False


@dataclass(frozen=True)
class Replay:
    """What a (re)connecting page is sent first: `reset` says to forget what it shows before `events`."""

    reset: bool
    events: list[BufferedEvent]


@dataclass
class EventBuffer:
    events_max: int = EVENTS_MAX_DEFAULT
    queue_max: int = QUEUE_MAX_DEFAULT
    boot: str = field(default_factory=lambda: clock.uuid4().hex[:8])
    _events: deque[BufferedEvent] = field(init=False)
    _subscriptions: list[Subscription] = field(default_factory=list, init=False)
    _seq_last: int = field(default=0, init=False)
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        assert self.events_max > 0 and self.queue_max > 0, "buffer bounds must be positive"
        self._events = deque(maxlen=self.events_max)

    @property
    def seq_last(self) -> int:
        """The number of the newest event (0 before any)."""
        return self._seq_last

    @property
    def count(self) -> int:
        """Events held now (at most `events_max`)."""
        return len(self._events)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def event_id(self, seq: int) -> str:
        return f"{self.boot}-{seq}"

    def append(self, event: dict[str, Any]) -> BufferedEvent:
        """Number and keep one event, and hand it to every open page (cutting off a page that is full)."""
        self._seq_last += 1
        buffered = BufferedEvent(self._seq_last, json.dumps(event, default=str, separators=(",", ":")))
        self._events.append(buffered)
        for subscription in self._subscriptions:
            if subscription.ended:
                continue
            try:
                subscription.queue.put_nowait(buffered)
            except asyncio.QueueFull:
                subscription.ended = subscription.overflowed = True
        return buffered

    def replay(self, last_event_id: str | None) -> Replay:
        """The events a page must be sent, given the id of the last event it has (`Last-Event-ID`)."""
        seq_after = self._seq_after(last_event_id)
        oldest = self._events[0].seq if self._events else self._seq_last + 1
        if seq_after is None or seq_after > self._seq_last or seq_after < oldest - 1:
            return Replay(reset=True, events=list(self._events))
        return Replay(reset=False, events=[event for event in self._events if event.seq > seq_after])

    def _seq_after(self, last_event_id: str | None) -> int | None:
        boot, _, seq = (last_event_id or "").partition("-")
        if boot != self.boot or not seq.isdigit():
            return None
        return int(seq)

    def subscribe(self) -> Subscription:
        """A queue of the events appended from now on; `unsubscribe` it when the page goes away."""
        subscription = Subscription(queue=asyncio.Queue(maxsize=self.queue_max), ended=self._closed)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def close(self) -> None:
        """End every stream (server shutdown): each page's queue gets a wake-up `None`."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription.ended = True
            try:
                subscription.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass  # a full queue wakes its reader anyway; `ended` is what it checks
