"""The UI's event buffer: bounded, numbered, replayed to a page from where it left off, never blocking."""

from __future__ import annotations

import json

from cluster.ui.buffer import EventBuffer


def event(index: int) -> dict[str, object]:
    return {"ts": float(index), "source": "coordinator", "kind": "replica.state", "index": index}


def test_keeps_only_the_newest_events_and_numbers_every_one() -> None:
    buffer = EventBuffer(events_max=3)
    for index in range(5):
        buffer.append(event(index))
    assert buffer.seq_last == 5 and buffer.count == 3
    replay = buffer.replay(None)
    assert replay.reset
    assert [json.loads(item.data)["index"] for item in replay.events] == [2, 3, 4]
    assert [item.seq for item in replay.events] == [3, 4, 5]


def test_a_page_resumes_after_the_last_event_it_has() -> None:
    buffer = EventBuffer(events_max=10)
    for index in range(4):
        buffer.append(event(index))
    replay = buffer.replay(buffer.event_id(2))
    assert not replay.reset
    assert [item.seq for item in replay.events] == [3, 4]
    assert buffer.replay(buffer.event_id(4)).events == []


def test_a_page_starts_over_after_a_restart_or_a_gap_larger_than_the_buffer() -> None:
    buffer = EventBuffer(events_max=2)
    for index in range(5):
        buffer.append(event(index))
    other_boot = EventBuffer().event_id(4)
    for last_event_id in (other_boot, buffer.event_id(1), buffer.event_id(99), "garbage", ""):
        replay = buffer.replay(last_event_id)
        assert replay.reset, last_event_id
        assert [item.seq for item in replay.events] == [4, 5]
    assert not buffer.replay(buffer.event_id(3)).reset, "event 4 is still held: no gap"


def test_subscribers_get_new_events_and_a_slow_one_is_cut_off() -> None:
    buffer = EventBuffer(events_max=100, queue_max=2)
    fast, slow = buffer.subscribe(), buffer.subscribe()
    buffer.append(event(0))
    assert fast.queue.get_nowait() is not None
    buffer.append(event(1))
    assert not slow.ended and slow.queue.qsize() == 2
    buffer.append(event(2))
    assert slow.ended and slow.overflowed, "a page 2 events behind is cut off, not waited for"
    assert not fast.ended and fast.queue.qsize() == 2
    buffer.unsubscribe(slow)
    assert buffer.subscriber_count == 1


def test_close_ends_every_stream() -> None:
    buffer = EventBuffer(queue_max=1)
    idle, full = buffer.subscribe(), buffer.subscribe()
    full.queue.put_nowait(None)
    buffer.close()
    assert idle.ended and full.ended
    assert idle.queue.get_nowait() is None
    assert buffer.subscribe().ended, "a page arriving after close gets an ended stream"
