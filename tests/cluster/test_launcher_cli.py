"""`shardsim up` as a user runs it: a real subprocess whose printed endpoints work, and whose Ctrl-C stops all.

Each test starts `python -m cluster.cli up ...`, reads what it prints and the `endpoints.json` it writes in
the run folder, and talks to the nodes over HTTP. The fixture sends SIGINT at the end and, whatever
happened, kills by PID the launcher and every child it listed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.retry import WaitTimeout, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def ports_free_consecutive(count: int) -> int:
    """A port P such that P..P+count-1 could all be bound on 127.0.0.1 a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def http_json(method: str, url: str, body: object = None, timeout_s: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class UpProcess:
    """One `shardsim up` subprocess; its output lines are collected by a reader thread it joins on stop."""

    def __init__(self, run_dir: Path, args: list[str]) -> None:
        self.run_dir = run_dir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli", "up", "--run-dir", str(run_dir), *args], cwd=REPO_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, name="up-output", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def wait_output(self, text: str, timeout_s: float) -> str:
        """The whole output once it contains `text`; AssertionError with the output after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while text not in "\n".join(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"{text!r} not printed by shardsim up:\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 0.5))
            return "\n".join(self.lines)

    def endpoints(self) -> dict[str, Any]:
        self.wait_output("Stop with Ctrl-C", READY_TIMEOUT_S)
        return dict(json.loads((self.run_dir / "endpoints.json").read_text()))

    def child_pids(self) -> list[int]:
        try:
            described = json.loads((self.run_dir / "endpoints.json").read_text())
        except (OSError, ValueError):
            return []
        found = [node.get("pid") for node in described["nodes"].values()]
        found.append(described["coordinator"].get("pid"))
        return [pid for pid in found if pid]

    def stop(self) -> int:
        """SIGINT and wait; SIGKILL the launcher and any child still there if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None and not self.reader.is_alive():
            self.process.stdout.close()
        return self.process.returncode

    def kill_leftovers(self) -> None:
        for pid in self.child_pids():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def up_factory(tmp_path: Path) -> Iterator[Callable[..., UpProcess]]:
    started: list[UpProcess] = []

    def start(*args: str) -> UpProcess:
        process = UpProcess(tmp_path / f"run{len(started)}", list(args))
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            process.stop()
        finally:
            process.kill_leftovers()


def wait_status(url: str, status: int, timeout_s: float = 15.0) -> Any:
    """The body of `GET url` once it answers `status` (these tests are synchronous: a loop of their own)."""
    last: list[tuple[int, Any]] = []

    async def answered() -> tuple[int, Any] | None:
        last[:] = [await asyncio.to_thread(http_json, "GET", url)]
        return last[0] if last[0][0] == status else None
    try:
        reply = asyncio.run(wait_until(answered, timeout_s, what=f"GET {url} to answer {status}"))
    except WaitTimeout as error:
        raise AssertionError(f"{error}; last answer: {last}") from None
    assert reply is not None
    return reply[1]


def test_up_prints_endpoints_that_work_and_ctrl_c_stops_every_process(up_factory: Callable[..., UpProcess]) -> None:
    base_port = ports_free_consecutive(3)
    up = up_factory("--nodes", "2", "--base-port", str(base_port))
    described = up.endpoints()
    output = up.output

    n1_url, n2_url = described["nodes"]["n1"]["url"], described["nodes"]["n2"]["url"]
    assert described["coordinator"]["url"] == f"http://127.0.0.1:{base_port}"
    assert (n1_url, n2_url) == (f"http://127.0.0.1:{base_port + 1}", f"http://127.0.0.1:{base_port + 2}")
    for name, url in (("n1", n1_url), ("n2", n2_url), ("coordinator", described["coordinator"]["url"]),
                      ("toxiproxy", described["toxiproxy"]), ("mqtt", described["mqtt"])):
        assert any(line.split()[:2] == [name, url] for line in output.splitlines()), f"{name} {url} not printed"
    assert str(up.run_dir) in output and (up.run_dir / "n1.log").exists() and (up.run_dir / "coordinator.log").exists()
    assert set(described["links"]) == {"n1->n2", "n2->n1", "coord->n1", "coord->n2"}

    status, body = http_json("PUT", f"{n1_url}/collections/c", {
        "vectors": {"size": 2, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2})
    assert status == 200, body
    wait_status(f"{n2_url}/collections/c", 200)
    points = [{"id": i, "vector": [1.0, float(i)]} for i in range(20)]
    status, body = http_json("PUT", f"{n1_url}/collections/c/points?wait=true", {"points": points})
    assert status == 200, body
    status, body = http_json("POST", f"{n2_url}/collections/c/points/count", {"exact": True})
    assert (status, body["result"]["count"]) == (200, 20), body

    pids = up.child_pids()
    assert len(pids) == 3 and all(pid_alive(pid) for pid in pids)
    assert up.stop() == 0, up.output
    assert "stopping" in up.output
    assert [pid for pid in pids if pid_alive(pid)] == [], "children left running after Ctrl-C"


def test_a_killed_node_is_reported_with_its_log_tail(up_factory: Callable[..., UpProcess]) -> None:
    up = up_factory("--nodes", "2")
    described = up.endpoints()
    n2_pid = described["nodes"]["n2"]["pid"]

    os.kill(n2_pid, signal.SIGKILL)
    output = up.wait_output(f"n2 (pid {n2_pid}) exited with code -9", 15.0)

    report = output[output.index(f"n2 (pid {n2_pid})"):]
    assert described["nodes"]["n2"]["log"] in report, "the report names the log file"
    assert "shardsim node peer_id=2 listening on" in report, "the report shows the end of the node's log"
    assert output.count("process died") == 1, "reported once"
    assert pid_alive(described["nodes"]["n1"]["pid"]), "the other processes keep running"
    assert up.stop() == 0


def test_a_base_port_in_use_fails_with_a_clear_message(up_factory: Callable[..., UpProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        up = up_factory("--nodes", "1", "--base-port", str(port))
        up.process.wait(30)
    up.stop()
    assert up.process.returncode == 1
    assert f"port {port} is in use" in up.output and "--base-port" in up.output


def test_up_with_api_keys_refuses_requests_without_one(up_factory: Callable[..., UpProcess]) -> None:
    up = up_factory("--nodes", "1", "--api-key", "main-key", "--alt-api-key", "next-key")
    described = up.endpoints()
    n1_url, coordinator_url = described["nodes"]["n1"]["url"], described["coordinator"]["url"]
    for url in (f"{n1_url}/collections", f"{coordinator_url}/internal/state"):
        status, body = http_json("GET", url)
        assert status == 401 and "error" in body["status"], (url, status, body)
    for key in ("main-key", "next-key"):
        request = urllib.request.Request(f"{n1_url}/collections", headers={"api-key": key})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    assert up.stop() == 0, up.output
