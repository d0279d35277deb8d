"""The fault proxy server: the Toxiproxy-compatible API plus every proxy it manages.

Part of `cluster.proxy`. `ProxyServer` is an async context manager that owns the API listener and the
`ProxyRegistry` (and through it every proxy listener and connection task): leaving it closes them all.
The launcher embeds it; `python -m cluster.proxy` (`main`) or `shardsim proxy` (`proxy_main`) runs it alone
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiohttp import web

from cluster.ports import site_port
from cluster.proxy.api import app_build
from cluster.proxy.registry import ProxyRegistry

SHUTDOWN_TIMEOUT_S = 5.0


class ProxyServer:
    """A running fault proxy: `async with ProxyServer(port=0) as server: server.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474) -> None:
        self.host = host
        self._port_requested = port
        self._port: int | None = None
        self.registry = ProxyRegistry()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ProxyServer:
        runner = web.AppRunner(
            app_build(self.registry), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port_requested)
            await site.start()
            self._port = site_port(runner, self._port_requested)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def __aexit__(self, *exc: Any) -> None:
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            await self.registry.close()

    @property
    def port(self) -> int:
        assert self._port is not None, "the server is not running (use `async with`)"
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with ProxyServer(host, port) as server:
        print(f"fault proxy (Toxiproxy API) listening on {server.url}", flush=True)
        await stop.wait()


def proxy_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim proxy` and `python -m cluster.proxy`."""
    parser.add_argument("--host", metavar="HOST", default="127.0.0.1", help="address of the API (default %(default)s)")
    parser.add_argument("--port", metavar="PORT", type=int, default=8474, help="port of the API (default %(default)s, 0: any)")


def proxy_main(args: argparse.Namespace) -> int:
    """Run the fault proxy until SIGINT or SIGTERM."""
    try:
        asyncio.run(_serve(args.host, args.port))
    except OSError as error:
        print(f"fault proxy: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m cluster.proxy [--host H] [--port P]`, the same command as `shardsim proxy`."""
    parser = argparse.ArgumentParser(prog="python -m cluster.proxy", description="Toxiproxy-compatible fault proxy")
    proxy_arguments_add(parser)
    return proxy_main(parser.parse_args(argv))
