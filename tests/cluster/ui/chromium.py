"""Headless Chromium for the UI tests: started as a child process, always stopped by its PID.

Chromium runs in its own session (process group = its PID), so stopping it also stops its renderer and GPU
helpers: SIGTERM to the group, then SIGKILL when it has not exited within `STOP_TIMEOUT_S`. Without a
Chromium the tests skip, except under CI (`CI` set), where they fail: the CI machine must have it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("/usr/bin/chromium", "chromium", "chromium-browser")
STOP_TIMEOUT_S = 5.0
WINDOW_SIZE = "1400,1000"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WINDOW_SIZE}")


def chromium_path() -> str:
    """Chromium's executable; skip the test without it, or fail it under CI."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "chromium not found: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required under CI)")
    pytest.skip(message)


def chromium_start(user_data_dir: Path, debugging_port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start headless Chromium with the DevTools protocol on 127.0.0.1:`debugging_port`, on about:blank."""
    command = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}",
               f"--remote-debugging-port={debugging_port}", "--remote-debugging-address=127.0.0.1", "about:blank"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def chromium_stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and its helpers (its process group, whose id is its PID); SIGKILL if it lingers."""
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, stop_signal)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlived the main process
