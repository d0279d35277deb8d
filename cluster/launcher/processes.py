"""Child processes of the launcher: start, wait ready, kill (SIGKILL), pause (SIGSTOP), resume, stop.

Each process logs to its own file in the run folder; `exit_report` gives the end of that log, so a process
that dies says why. Processes are stopped by PID, and every wait has a timeout. `wait_http_ok` is the same
readiness wait for a process the launcher did not start (external mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp

from node.retry import WaitTimeout, wait_until

READY_POLL_INTERVAL_S = 0.05


class ProcessFailed(Exception):
    """A child process exited or never became ready; the message has the end of its log."""


class ProcessNotOwned(ProcessFailed):
    """A process fault (kill, pause, resume, restart) asked of a process the launcher did not start."""


async def wait_http_ok(url: str, timeout_s: float, what: str, headers: dict[str, str] | None = None) -> None:
    """Poll `url` until it answers 200; `ProcessFailed` naming `what` and the last error after `timeout_s`."""
    last_error = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        async def answers() -> bool:
            nonlocal last_error
            try:
                async with session.get(url, headers=headers) as response:
                    if response.status == 200:
                        return True
                    last_error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                last_error = repr(error)
            return False
        try:
            await wait_until(answers, timeout_s, interval_s=READY_POLL_INTERVAL_S)
        except WaitTimeout:
            raise ProcessFailed(f"{what} not ready at {url} after {timeout_s} s ({last_error})") from None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ChildProcess:
    def __init__(self, name: str, args: list[str], log_path: Path, ready_url: str,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.env = dict(env or {})  # added to the launcher's own environment
        self.log_path = log_path
        self.ready_url = ready_url
        self.process: asyncio.subprocess.Process | None = None
        self.paused = False
        self.expected_exit = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, ready_timeout_s: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, stdout=log, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True)
        self.paused = False
        self.expected_exit = False
        await self.wait_ready(ready_timeout_s)

    async def wait_ready(self, timeout_s: float) -> None:
        """Poll the ready URL until it answers 200; `ProcessFailed` at once if the process exits."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
            async def ready() -> bool:
                if not self.alive:
                    raise ProcessFailed(self.exit_report())
                async with session.get(self.ready_url) as response:
                    return response.status == 200
            try:
                await wait_until(ready, timeout_s, interval_s=READY_POLL_INTERVAL_S,
                                 ignore=(aiohttp.ClientError, TimeoutError, OSError))
            except WaitTimeout:
                raise ProcessFailed(f"{self.name} not ready after {timeout_s} s\n"
                                    f"{log_tail(self.log_path)}") from None

    def exit_report(self) -> str:
        code = self.process.returncode if self.process is not None else None
        return f"{self.name} (pid {self.pid}) exited with code {code}; end of {self.log_path}:\n" \
               f"{log_tail(self.log_path)}"

    def signal(self, signum: int) -> None:
        if self.alive and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    async def kill(self) -> None:
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 10)
        self.paused = False

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    async def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (after SIGCONT if paused), then SIGKILL if it does not exit in time."""
        if not self.alive:
            return
        self.expected_exit = True
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        assert self.process is not None
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            await self.kill()
