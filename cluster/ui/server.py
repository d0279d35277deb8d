"""`shardsim ui`: the live page's HTTP server, fed by the MQTT event bus.

`UiServer` owns two things for the life of an `async with` block: a task that reads the bus
(`events_stream`, reconnecting by itself) into an `EventBuffer`, and an aiohttp site on `host:port` serving
`GET /` (the page), `GET /events` (Server-Sent Events, see `sse.py`) and `GET /status` (JSON counters).
`shardsim up --ui` and `shardsim run --ui` embed it with `live_page_start` (and the same `--ui`, `--ui-port`
flags, `live_page_args_add`); `ui_arguments_add` and `ui_main` are the stand-alone command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from types import TracebackType

from aiohttp import web

from cluster.events.subscriber import bus_args_add, events_stream, topic_filter
from cluster.ports import site_port
from cluster.ui.buffer import EVENTS_MAX_DEFAULT, EventBuffer
from cluster.ui.page import page_html
from cluster.ui.sse import CLUSTER_NAME, EVENT_BUFFER, events_handler
from node.eventbus import parse_mqtt_url

PORT_DEFAULT = 8765
SUBSCRIBE_TIMEOUT_S = 5.0
SHUTDOWN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


class UiServer:
    """The live page for `cluster` (every cluster when None) at `.url`, for the life of an `async with`.

    Entering waits (at most 5 s) for the bus subscription, so events published afterwards are shown; when
    the broker is not up yet the page is served anyway and the subscription keeps trying in the background.
    """

    def __init__(self, mqtt_url: str, cluster: str | None, host: str = "127.0.0.1", port: int = 0,
                 events_max: int = EVENTS_MAX_DEFAULT) -> None:
        parse_mqtt_url(mqtt_url)
        self._mqtt_url = mqtt_url
        self._cluster = cluster
        self._host = host
        self._port = port
        self.buffer = EventBuffer(events_max=events_max)
        self._page = page_html(cluster, mqtt_url, events_max)
        self._subscribed_count = 0
        self._subscribed = asyncio.Event()
        self._arrival = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """`http://host:port/`, the page; valid inside the `async with` block."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/"

    async def __aenter__(self) -> UiServer:
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._reader = self._task_group.create_task(self._read_bus(), name="ui bus reader")
        try:
            await self._serve()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        try:
            await self.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            log.warning("ui not subscribed to %s after %.0f s; still trying", self._mqtt_url, SUBSCRIBE_TIMEOUT_S)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.buffer.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._reader is not None:
            self._reader.cancel()
        if self._task_group is not None:
            task_group, self._task_group = self._task_group, None
            await task_group.__aexit__(None, None, None)

    async def wait_subscribed(self, timeout_s: float) -> None:
        """Wait until the bus subscription is in place; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    async def wait_events_seen(self, count: int, timeout_s: float) -> None:
        """Wait until `count` events in all came from the bus; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while self.buffer.seq_last < count:
                self._arrival.clear()
                await self._arrival.wait()

    async def _serve(self) -> None:
        app = web.Application()
        app[EVENT_BUFFER] = self.buffer
        app[CLUSTER_NAME] = self._cluster or "*"
        app.router.add_get("/", self._page_handler)
        app.router.add_get("/events", events_handler)
        app.router.add_get("/status", self._status_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = site_port(self._runner, self._port)
        log.info("shardsim ui on %s for %s", self.url, topic_filter(self._cluster))

    async def _page_handler(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _status_handler(self, request: web.Request) -> web.Response:
        return web.json_response({
            "cluster": self._cluster, "mqtt_url": self._mqtt_url, "subscribed_count": self._subscribed_count,
            "events_seen": self.buffer.seq_last, "events_held": self.buffer.count,
            "pages_open": self.buffer.subscriber_count})

    def _on_subscribed(self) -> None:
        self._subscribed_count += 1
        self._subscribed.set()

    async def _read_bus(self) -> None:
        stream = events_stream(self._mqtt_url, self._cluster, on_subscribed=self._on_subscribed)
        async with contextlib.aclosing(stream):
            async for event in stream:
                self.buffer.append(event)
                self._arrival.set()


def live_page_args_add(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--ui` and `--ui-port`, the same for every command that can embed the page (`up`, `run`)."""
    parser.add_argument("--ui", action="store_true", help=help_text)
    parser.add_argument("--ui-port", metavar="PORT", type=int, default=PORT_DEFAULT,
                        help="port of the live page (default %(default)s, 0: any)")


async def live_page_start(stack: contextlib.AsyncExitStack, mqtt_url: str | None, cluster_name: str,
                          port: int) -> str:
    """The live page of a cluster about to start, entered on `stack`; returns the broker URL the cluster
    must publish to. The page subscribes before the nodes start (so it sees them start), which needs a
    broker first: `mqtt_url`, else an embedded one, also entered on `stack`."""
    if mqtt_url is None:
        from cluster.events.broker import EmbeddedBroker
        mqtt_url = (await stack.enter_async_context(EmbeddedBroker())).url
    ui = await stack.enter_async_context(UiServer(mqtt_url, cluster_name, port=port))
    print(f"live page: {ui.url}", flush=True)
    return mqtt_url


def ui_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim ui` (wired in cluster/cli.py)."""
    bus_args_add(parser, every_cluster=True)
    parser.add_argument("--port", metavar="PORT", type=int, default=PORT_DEFAULT, help="HTTP port (default %(default)s, 0: any)")
    parser.add_argument("--host", metavar="HOST", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--duration-s", metavar="SECONDS", type=float, default=None, help="stop after this many seconds")


def ui_main(args: argparse.Namespace) -> int:
    """`shardsim ui [--mqtt-url URL] [--cluster-name NAME] [--port 8765] [--host 127.0.0.1]`: serve until
    Ctrl-C."""
    cluster = None if args.cluster_name == "*" else args.cluster_name
    try:
        parse_mqtt_url(args.mqtt_url)
    except ValueError as error:
        print(f"shardsim ui: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve_until_stopped(args.mqtt_url, cluster, args.host, args.port, args.duration_s))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"shardsim ui: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve_until_stopped(mqtt_url: str, cluster: str | None, host: str, port: int,
                               duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with UiServer(mqtt_url, cluster, host, port) as ui:
            print(f"shardsim ui: {ui.url}  (events {topic_filter(cluster)} from {mqtt_url}; Ctrl-C stops)",
                  flush=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration_s):
                    await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
