"""report_write: verdicts.json and a self-contained report.html that a real browser renders.

The browser test runs headless Chromium (Debian's /usr/bin/chromium) on the written page: `--dump-dom`
must contain the swimlane's state segments, and `--screenshot` must produce a PNG that is not one flat
colour. Without Chromium the test skips, except when the CI variable is set: then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from cluster.checkers import CheckResult, run_checkers
from cluster.report import report_write
from cluster.report.timeline import timeline_build
from tests.cluster.report.sample_history import sample_history

CHROMIUM_TIMEOUT_S = 60
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1500,1100"]


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return path


def chromium_run(args: list[str], profile_dir: Path) -> str:
    """Run Chromium in its own process group; stop the whole group by its id whatever happens."""
    process = subprocess.Popen([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, _ = process.communicate(timeout=CHROMIUM_TIMEOUT_S)
        return stdout.decode("utf-8", errors="replace")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def png_colour_count(path: Path) -> int:
    """Distinct RGB(A) pixel values of a non-interlaced 8-bit PNG, decoded with zlib and the five filters."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        header, idat = (chunk, idat) if kind == b"IHDR" else (header, idat + chunk if kind == b"IDAT" else idat)
        offset += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    pixel_bytes = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * pixel_bytes
    previous, colours = bytearray(stride), set[bytes]()
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - pixel_bytes] if i >= pixel_bytes else 0
            up, corner = previous[i], previous[i - pixel_bytes] if i >= pixel_bytes else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        if row % 4 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, pixel_bytes * 2))
        previous = line
    return len(colours)


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    history = sample_history()
    report_write(tmp_path / "run", history, run_checkers(history))
    return tmp_path / "run"


def test_verdicts_json_has_results_seed_command_and_exit_kind(report_dir: Path) -> None:
    verdicts = json.loads((report_dir / "verdicts.json").read_text())
    assert verdicts["seed"] == 7 and verdicts["command"] == "shardsim run literal --seed 7"
    assert [r["name"] for r in verdicts["results"]][:2] == ["no_lost_writes", "replicas_converge"]
    assert verdicts["exit_kind"] in ("ok", "correctness", "liveness", "unknown")
    assert isinstance(verdicts["exit_code"], int)


def test_html_is_self_contained_and_carries_segments_and_verdicts(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    assert "<script" not in html and "<link" not in html
    assert not re.findall(r'(?:src|href)="https?://', html)
    expected_segments = len(timeline_build(sample_history()).segments)
    assert html.count('class="segment state-') == expected_segments
    assert "shardsim run literal --seed 7" in html and 'id="swimlane"' in html
    assert "link_down n3-&gt;n2" in html and "snapshot 4.0 KiB" in html
    assert "<title>" in html.split('id="swimlane"')[1]


def test_crashed_and_unknown_verdicts_are_shown(tmp_path: Path) -> None:
    results = [CheckResult("no_lost_writes", None, "checker crashed: KeyError: 'x'"),
               CheckResult("nothing_stuck", False, "1 transfers still open")]
    html = report_write(tmp_path, sample_history(), results).read_text()
    assert "checker crashed: KeyError" in html and "INVALID" in html and "unknown" in html
    assert json.loads((tmp_path / "verdicts.json").read_text())["exit_kind"] == "liveness"


def test_chromium_renders_the_swimlane(report_dir: Path, tmp_path: Path) -> None:
    page = (report_dir / "report.html").resolve().as_uri()
    dom = chromium_run(["--dump-dom", page], tmp_path / "profile-dom")
    expected_segments = len(timeline_build(sample_history()).segments)
    assert 'id="swimlane"' in dom
    assert len(re.findall(r'class="segment state-(\w+)"', dom)) == expected_segments
    assert {"Active", "Dead", "Recovery", "Initializing"} <= set(re.findall(r'class="segment state-(\w+)"', dom))
    screenshot = tmp_path / "report.png"
    chromium_run([f"--screenshot={screenshot}", page], tmp_path / "profile-shot")
    assert screenshot.stat().st_size > 20_000
    assert png_colour_count(screenshot) > 20
