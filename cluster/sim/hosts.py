"""The processes of a simulated cluster: each one a host of the `SimEngine`, booted as its `__main__` would.

A `SimProcess` is to a host what `cluster.launcher.processes.ChildProcess` is to an OS process: start (and
wait until its ready URL answers), kill (SIGKILL: `SimEngine.kill`), pause and resume (SIGSTOP/SIGCONT),
stop (graceful: its task is cancelled, so its cleanup runs, as on SIGTERM; a kill if that takes longer
than the timeout). Booting parses the same command-line flags as `python -m node` and
`python -m cluster.coordinator`, then serves the same aiohttp app on the host's fixed port
(`AppRunner(handle_signals=False)`: a simulation has no signals and no port 0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from cluster.coordinator.__main__ import parser_build as coordinator_parser
from cluster.coordinator.engine import Coordinator, CoordinatorSettings
from cluster.coordinator.server import app_build as coordinator_app_build
from cluster.launcher.processes import ProcessFailed, wait_http_ok
from cluster.proxy.server import ProxyServer
from cluster.sim import engine
from node.api.app import app_build as node_app_build
from node.settings import settings_from_args
from node.settings_args import settings_from_namespace

NODE_PORT = 6333
COORDINATOR_HOST = "coordinator"
COORDINATOR_PORT = 6300
PROXY_HOST = "proxy"
PROXY_API_PORT = 8474
STOP_TIMEOUT_S = 5.0

Boot = Callable[[], Coroutine[Any, Any, None]]


async def app_serve(app: web.Application, host: str, port: int, shutdown_timeout_s: float) -> None:
    """`web.run_app` without signals: serve `app` on `host:port` until cancelled (a graceful stop)."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def node_boot(host: str, argv: list[str]) -> Boot:
    """`python -m node ARGV` on `host` (its app is built there: the node opens its files on its host)."""
    async def boot() -> None:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        settings = settings_from_args(argv)
        await app_serve(node_app_build(settings), host, settings.port, shutdown_timeout_s=5.0)
    return boot


def coordinator_boot(host: str, argv: list[str]) -> Boot:
    """`python -m cluster.coordinator ARGV` on `host`."""
    async def boot() -> None:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        args = coordinator_parser().parse_args(argv)
        settings = settings_from_namespace(CoordinatorSettings, args, db_path=args.db_path.resolve())
        await app_serve(coordinator_app_build(Coordinator(settings)), host, settings.port, shutdown_timeout_s=3.0)
    return boot


def proxy_boot(host: str, port: int) -> Boot:
    """The fault proxy (Toxiproxy API and every link listener) on `host`."""
    async def boot() -> None:
        async with ProxyServer(host, port):
            await asyncio.Event().wait()
    return boot


class SimProcess:
    """One process of the simulated cluster on its own host; the same verbs as the launcher's ChildProcess."""

    def __init__(self, loop: engine.SimEngine, name: str, boot: Boot, ready_url: str,
                 on_kill: Callable[[str], None] | None = None) -> None:
        self.loop = loop
        self.name = name
        self.boot = boot
        self.ready_url = ready_url
        self.on_kill = on_kill
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.expected_exit = False
        self.killed = False
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.killed and not self.task.done()

    async def start(self, ready_timeout_s: float = 30.0) -> None:
        self.starts += 1
        self.task = self.loop.host_start(self.name, self.boot(), task_name=f"{self.name} main")
        self.killed = self.paused = self.expected_exit = False
        try:
            await wait_http_ok(self.ready_url, ready_timeout_s, self.name)
        except ProcessFailed:
            if not self.alive:
                raise ProcessFailed(self.exit_report()) from None
            raise

    def exit_report(self) -> str:
        if self.task is None:
            return f"{self.name} never started"
        if self.killed:
            return f"{self.name} was killed"
        if not self.task.done():
            return f"{self.name} runs"
        error = None if self.task.cancelled() else self.task.exception()
        return f"{self.name} (host {self.name}) ended: {error!r}"

    async def kill(self) -> None:
        if self.task is None or self.killed:
            return
        self.expected_exit = True
        self.loop.kill(self.name)
        self.killed = True
        self.paused = False
        if self.on_kill is not None:
            self.on_kill(self.name)

    def pause(self) -> None:
        if self.alive:
            self.loop.pause(self.name)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.loop.resume(self.name)
        self.paused = False

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM: the process's own cleanup runs (after a resume if paused); a kill if it takes too long."""
        if not self.alive or self.task is None:
            return
        self.expected_exit = True
        self.resume()
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=timeout_s)
        if not self.task.done():
            await self.kill()
