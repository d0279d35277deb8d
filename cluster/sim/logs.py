"""Per-host logs of a simulated run: every process logs to its own file in the run folder, as in real mode.

All hosts share one Python process, so one logging configuration; `HostLogs` is a handler that writes each
record to `<folder>/<host>.log` by the host whose code logged it, stamped with the virtual time. While it
is installed the console (the root logger's other handlers) only shows what the runner logs, as a real run
shows only the runner's output (the nodes and the coordinator log to their files).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cluster.sim import engine

RUNNER_HOSTS = ("runner", "driver")


class HostLogs(logging.Handler):
    """Writes each record to the log file of the host it came from (created on first use)."""

    def __init__(self, folder: Path, loop: engine.SimEngine) -> None:
        super().__init__(logging.INFO)
        self.folder = folder
        self.loop = loop
        self.files: dict[str, IO[str]] = {}
        self.setFormatter(logging.Formatter("%(sim_time)12.6f %(sim_host)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        host = engine.current_host() or "network"
        record.sim_host = host
        record.sim_time = self.loop.time()
        try:
            file = self.files.get(host)
            if file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                file = self.files[host] = (self.folder / f"{host}.log").open("a", encoding="utf-8")
            file.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - a log line must never break the run
            self.handleError(record)

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()
        super().close()


class RunnerOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return engine.current_host() in RUNNER_HOSTS


@contextlib.contextmanager
def host_logs(folder: Path, loop: engine.SimEngine) -> Iterator[HostLogs]:
    """Route every host's logging to `folder/<host>.log` for the block (INFO and up, as the processes log)."""
    root = logging.getLogger()
    handler = HostLogs(folder, loop)
    runner_only = RunnerOnly()
    others = {other: other.level for other in root.handlers}
    level = root.level
    for other in others:
        other.addFilter(runner_only)
        other.setLevel(max(other.level, level))  # the console keeps its level, now that the root lets INFO by
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for other, other_level in others.items():
            other.removeFilter(runner_only)
            other.setLevel(other_level)
        handler.close()
