"""`shardsim run --sim` where the simulation cannot run says so in one line and exits 3 (any Python)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cluster.cli import parser_build
from cluster.sim import support

ROOT = Path(__file__).resolve().parents[3]


def run_main(argv: list[str]) -> int:
    args = parser_build("run").parse_args(["run", *argv])
    return int(args.main(args))


def test_sim_on_python_3_11_says_what_to_do_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    code = run_main([str(ROOT / "scenarios" / "move_under_latency.py"), "--sim"])
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    (line,) = err.splitlines()
    assert "Python 3.12+" in line and "pip install -e '.[sim]'" in line and "venv" in line


def test_sim_with_another_simloop_version_names_the_one_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    monkeypatch.setattr(support.importlib.metadata, "version", lambda name: "0.3.0")
    reason = support.unavailable_reason()
    assert reason is not None and "simloop==0.2.2" in reason and "0.3.0" in reason


def test_check_determinism_needs_sim_and_sim_refuses_real_process_options(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(ROOT / "scenarios" / "move_under_latency.py")
    assert run_main([scenario, "--check-determinism"]) == 3
    assert "add --sim" in capsys.readouterr().err
    if support.unavailable_reason() is None:
        assert run_main([scenario, "--sim", "--step"]) == 3
        assert "--step need real processes" in capsys.readouterr().err
