"""Which host logged a line, when several hosts share one process (a simulation runs every node, the
coordinator and the proxy on one event loop, with one logging configuration).

Loggers stay module-level (`logging.getLogger("shardsim.node")`). The host is a context variable that a node
or the coordinator sets as it starts (`host_set`, in the task that starts it: a process's main task, or a
simulated host's boot task); asyncio copies the context into every task and callback made afterwards
(request handlers, background tasks, their timers), so each line logged on a host's behalf carries its name. `HostFilter`, added to a handler, puts it on every record as `record.host`, for a format
with `%(host)s`. Real mode sets the variable too, but its formats do not show it: its logs read as before.
Pure: no I/O, no node state, so `cluster/` may import it (tests/test_layout.py).
"""

from __future__ import annotations

import contextvars
import logging

HOST_NONE = "-"

_host: contextvars.ContextVar[str] = contextvars.ContextVar("shardsim_log_host", default=HOST_NONE)


def host_set(name: str) -> None:
    """Name the host of the running task, and of every task and callback it starts from now on."""
    _host.set(name)


def host() -> str:
    """The host of the running code, `-` when none was named."""
    return _host.get()


class HostFilter(logging.Filter):
    """Adds `record.host`, the host that logged the record (`-` when none was named); drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "host"):
            record.host = _host.get()
        return True
