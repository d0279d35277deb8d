"""`shardsim run --step` driven through a pseudo-terminal, as a person at the keyboard would."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parent / "scenarios" / "step_small.py"
PROMPT = "press Enter to let the coordinator go on"


class Terminal:
    """A child process on a pty: read what it prints, type keys."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        os.close(slave)
        self.screen = ""

    def read_until(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        start = len(self.screen)
        while time.monotonic() < deadline:
            if re.search(pattern, self.screen[start:]):
                return self.screen[start:]
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        raise AssertionError(f"{pattern!r} not seen within {timeout_s} s; screen:\n{self.screen[-3000:]}")

    def read_available(self) -> None:
        """Add to the screen whatever the child printed so far, without waiting."""
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            self.screen += data.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        os.close(self.master)
        return int(self.process.returncode)


def test_step_mode_pauses_before_each_decision_and_goes_on_with_enter(tmp_path: Path) -> None:
    terminal = Terminal([sys.executable, "-m", "cluster.cli", "run", str(SCENARIO), "--step",
                         "--runs-dir", str(tmp_path)])
    try:
        first = terminal.read_until(PROMPT, 60)
        assert "step 1: the coordinator is about to decide" in first
        assert "rule collection.create" in first and "because" in first
        rules_seen = set(re.findall(r"rule (\S+):", first))
        time.sleep(1.0)  # time passes on purpose: without Enter nothing may happen (an absence is asserted)
        terminal.read_available()
        assert "step 2" not in terminal.screen, "the coordinator must wait for Enter"
        typed = 0
        deadline = time.monotonic() + 90
        while "report:" not in terminal.screen and time.monotonic() < deadline:
            while typed < terminal.screen.count(PROMPT):  # one Enter per pause, as a person would
                terminal.type("\n")
                typed += 1
            terminal.read_until(rf"{PROMPT}|report:", 60)
        rules_seen |= set(re.findall(r"rule (\S+):", terminal.screen))
        assert "report:" in terminal.screen
        assert typed >= 5
        assert {"collection.create", "collection.created", "transfer.start", "transfer.recovered",
                "transfer.finished"} <= rules_seen
        try:
            terminal.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("shardsim run did not end after its report:\n" + terminal.screen[-2000:]) from None
        assert terminal.process.returncode == 0, terminal.screen[-2000:]
        assert "held" in terminal.screen
    finally:
        terminal.close()


def test_step_delay_goes_on_by_itself(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cluster.cli", "run", str(SCENARIO), "--step",
                             "--step-delay-s", "0.05", "--runs-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("the coordinator is about to decide") >= 5
    assert PROMPT not in result.stdout
