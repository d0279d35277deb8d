"""Ports for processes that bind later: the one way shardsim picks a free 127.0.0.1 port.

Binding port 0, reading the port and closing races with everything else that binds port 0 meanwhile (the
fault proxy's links do). So a port for a process is chosen below the kernel's ephemeral range when there is
room, where no port-0 listener and no outgoing connection can take it before the process binds it.

`site_port` is the port an aiohttp site listens on: the one asked for, or, for port 0, the one the kernel
chose (a simulated network has no real sockets to read back, so there a port must be given).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from node import clock

if TYPE_CHECKING:
    from aiohttp import web

PORT_LOW = 10_000  # ports handed to processes are chosen from PORT_LOW up to the kernel's ephemeral range
PORT_ATTEMPTS_MAX = 200
EPHEMERAL_RANGE_PATH = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_port_low() -> int:
    """The first port of the kernel's ephemeral range (what a bind to port 0 picks from); 32768 if unknown."""
    try:
        return int(EPHEMERAL_RANGE_PATH.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_for_process(taken: set[int]) -> int:
    """A free 127.0.0.1 port for a process to bind later, not in `taken`.

    Chosen below the ephemeral range when there is room, so that between now and the moment the process
    binds it, no port-0 listener (a proxy link) and no outgoing connection can take it.
    """
    low = ephemeral_port_low()
    for _ in range(PORT_ATTEMPTS_MAX):
        if low - PORT_LOW >= 1000:
            port = PORT_LOW + clock.randbelow(low - PORT_LOW)
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
        if port not in taken and port_bindable(port):
            return port
    raise OSError(f"no free port found on 127.0.0.1 after {PORT_ATTEMPTS_MAX} attempts")


def site_port(runner: web.AppRunner, port_requested: int) -> int:
    """The port `runner`'s site listens on: `port_requested`, or the one bound for port 0 (real sockets only)."""
    if port_requested != 0:
        return port_requested
    if not runner.addresses:
        raise OSError("port 0 needs real sockets to read the bound port back; give a port")
    return int(runner.addresses[0][1])
