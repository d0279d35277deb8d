"""`GET /events`: the bus as Server-Sent Events, replayed from the buffer and then followed live.

Each page gets, in order: `retry: 1000`, an `event: hello` ({"boot", "reset", "replay_count", "server_ts",
"cluster"}), the replayed events, then new events as they arrive, each as `id: {boot}-{seq}` plus one line
of JSON `data:`. A comment line goes out every `HEARTBEAT_S` when nothing happens, so a dead connection is
noticed. The stream ends when the server shuts down, when the page falls too far behind (the browser then
reconnects with `Last-Event-ID` and resumes from the buffer) or when a write does not finish in time.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from cluster.ui.buffer import BufferedEvent, EventBuffer, Subscription
from node import clock

HEARTBEAT_S = 15.0
WRITE_TIMEOUT_S = 10.0
RETRY_MS = 1000

EVENT_BUFFER: web.AppKey[EventBuffer] = web.AppKey("event_buffer", EventBuffer)
CLUSTER_NAME: web.AppKey[str] = web.AppKey("cluster_name", str)

log = logging.getLogger(__name__)


def sse_message(data: str, event_id: str | None = None, event: str | None = None) -> bytes:
    """One SSE message; `data` must be a single line (compact JSON is)."""
    assert "\n" not in data and "\r" not in data, "SSE data is one line"
    head = (f"id: {event_id}\n" if event_id else "") + (f"event: {event}\n" if event else "")
    return f"{head}data: {data}\n\n".encode()


async def events_handler(request: web.Request) -> web.StreamResponse:
    buffer = request.app[EVENT_BUFFER]
    subscription = buffer.subscribe()  # before the replay, in the same step: nothing falls in between
    replay = buffer.replay(request.headers.get("Last-Event-ID"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        hello = {"boot": buffer.boot, "reset": replay.reset, "replay_count": len(replay.events),
                 "server_ts": clock.now(), "cluster": request.app[CLUSTER_NAME]}
        await _write(response, f"retry: {RETRY_MS}\n\n".encode() + sse_message(json.dumps(hello), event="hello"))
        await _write(response, b"".join(_encode(buffer, event) for event in replay.events))
        await _follow(response, buffer, subscription)
    except (ConnectionResetError, TimeoutError) as error:
        log.debug("event stream to %s ended: %r", request.remote, error)
    finally:
        buffer.unsubscribe(subscription)
    return response


async def _follow(response: web.StreamResponse, buffer: EventBuffer, subscription: Subscription) -> None:
    """Write new events until the subscription ends; a heartbeat comment when idle."""
    while not subscription.ended:
        try:
            event = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_S)
        except TimeoutError:
            await _write(response, b": heartbeat\n\n")
            continue
        if event is None or subscription.ended:
            break
        chunk = [_encode(buffer, event)]
        while not subscription.queue.empty():  # send what piled up in one write
            queued = subscription.queue.get_nowait()
            if queued is not None:
                chunk.append(_encode(buffer, queued))
        await _write(response, b"".join(chunk))
    if subscription.overflowed:
        log.info("a page fell more than %d events behind; cut off so that it resumes", buffer.queue_max)


def _encode(buffer: EventBuffer, event: BufferedEvent) -> bytes:
    return sse_message(event.data, event_id=buffer.event_id(event.seq))


async def _write(response: web.StreamResponse, data: bytes) -> None:
    if data:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await response.write(data)
