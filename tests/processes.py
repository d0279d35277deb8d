"""Processes and ports for tests: free ports, waiting for a listener, real node processes stopped by PID.

- `free_port()`: a 127.0.0.1 port for a process (or a test server) to bind later; every test takes its
  single ports from here. It is the launcher's choice (below the kernel's ephemeral range), so no port-0 listener
  or outgoing connection can take it before it is bound.
- `wait_port_open(port, timeout_s, process)`: until something accepts connections there.
- `NodeProcess`, used through the `node_factory` fixture (tests/conftest.py), which kills every process it
  started when the test ends, even when the test fails. It is synchronous (started from sync fixtures too),
  so its readiness wait is a plain deadline loop rather than `node.retry.wait_until`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cluster.ports import port_for_process
from node.retry import wait_until

READY_POLL_S = 0.05
CONNECT_TIMEOUT_S = 1.0


def free_port() -> int:
    return port_for_process(set())


async def wait_port_open(port: int, timeout_s: float, process: asyncio.subprocess.Process | None = None) -> None:
    """Until 127.0.0.1:`port` accepts a connection; RuntimeError at once if `process` exits meanwhile."""
    async def listening() -> bool:
        if process is not None and process.returncode is not None:
            raise RuntimeError(f"the process exited with {process.returncode} before listening on {port}")
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            return False
        writer.close()
        await writer.wait_closed()
        return True
    await wait_until(listening, timeout_s, READY_POLL_S, what=f"a listener on 127.0.0.1:{port}")


class NodeProcess:
    """One `python -m node` process with its data directory and log file."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: list[str] | None = None,
                 peer_id: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = extra_args or []
        self.peer_id = peer_id
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready_s: float = 20.0) -> NodeProcess:
        args = [sys.executable, "-m", "node", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.peer_id is not None:
            args += ["--peer-id", str(self.peer_id)]
        args += self.extra_args
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        self.wait_ready(wait_ready_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(READY_POLL_S)
        raise TimeoutError(f"node on port {self.port} not ready after {timeout_s} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 10.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
            except ProcessLookupError:
                return
            self.terminate(timeout_s=5)
