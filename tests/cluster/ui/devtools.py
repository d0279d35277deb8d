"""A minimal Chrome DevTools protocol client over aiohttp's websocket: one page target per `async with`.

Enough for the UI tests: open a new tab, call methods (`Page.navigate`, `Runtime.evaluate`,
`Page.captureScreenshot`), wait for an event (`Page.loadEventFired`), collect uncaught page exceptions, and
close the tab. A reader task, owned by a TaskGroup, routes replies to their callers; every call has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from types import TracebackType
from typing import Any

import aiohttp

from node.retry import wait_until

CALL_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 15.0
EVENTS_KEPT_MAX = 1000


class DevToolsError(Exception):
    """The browser answered a call with an error, or a page script threw."""


async def wait_devtools_ready(session: aiohttp.ClientSession, port: int, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until Chromium answers `GET /json/version` on `port`."""
    async def answers() -> bool:
        async with session.get(f"http://127.0.0.1:{port}/json/version",
                               timeout=aiohttp.ClientTimeout(total=1)) as response:
            return response.status == 200
    await wait_until(answers, timeout_s, what=f"Chromium's DevTools on port {port}",
                     ignore=(aiohttp.ClientError, TimeoutError))


class DevToolsPage:
    """A new browser tab, driven over its DevTools websocket for the life of an `async with` block."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self._session = session
        self._base = f"http://127.0.0.1:{port}"
        self._target_id = ""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT_MAX)
        self._arrival = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self.exceptions: list[str] = []

    async def __aenter__(self) -> DevToolsPage:
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
        async with self._session.put(f"{self._base}/json/new?about:blank", timeout=timeout) as response:
            target = await response.json()
        self._target_id = target["id"]
        self._ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0,
                                                 timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._reader = self._task_group.create_task(self._read())
        for domain in ("Page", "Runtime"):
            await self.call(f"{domain}.enable")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._task_group is not None:
            await self._task_group.__aexit__(None, None, None)
        async with self._session.get(f"{self._base}/json/close/{self._target_id}",
                                     timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)):
            pass

    async def call_start(self, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[dict[str, Any]]:
        """Send one call; the future gets its result (an error reply raises DevToolsError)."""
        assert self._ws is not None, "the page is open"
        call_id = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = reply
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        return reply

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        reply = await self.call_start(method, params)
        async with asyncio.timeout(timeout_s):
            return await reply

    async def evaluate(self, expression: str, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """The JSON value of a page expression (promises are awaited); DevToolsError when it throws."""
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True}, timeout_s)
        return evaluation_value(result)

    async def navigate(self, url: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """Open `url` and wait for its load event."""
        self._events.clear()
        await self.call("Page.navigate", {"url": url})
        await self.wait_event("Page.loadEventFired", timeout_s)

    async def wait_event(self, method: str, timeout_s: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self._events:
                    if event.get("method") == method:
                        return event
                self._arrival.clear()
                await self._arrival.wait()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            reply = self._pending.pop(data.get("id", -1), None)
            if reply is not None and not reply.done():
                if "error" in data:
                    reply.set_exception(DevToolsError(str(data["error"])))
                else:
                    reply.set_result(data.get("result", {}))
            elif "method" in data:
                if data["method"] == "Runtime.exceptionThrown":
                    self.exceptions.append(json.dumps(data["params"]["exceptionDetails"])[:2000])
                self._events.append(data)
                self._arrival.set()


def evaluation_value(result: dict[str, Any]) -> Any:
    """The value of a `Runtime.evaluate` result; DevToolsError when the expression threw."""
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        raise DevToolsError(str(details.get("exception", {}).get("description") or details.get("text")))
    return result["result"].get("value")
