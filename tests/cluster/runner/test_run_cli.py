"""`shardsim run` end to end, as a user runs it: real clusters, exit codes per failure kind, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def shardsim_run(*args: str, runs_dir: Path, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster.cli", "run", *args, "--runs-dir", str(runs_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)


def only_run_dir(runs_dir: Path) -> Path:
    (run_dir,) = list(runs_dir.iterdir())
    return run_dir


def test_a_scenario_that_holds_exits_0_with_history_verdicts_and_report(tmp_path: Path) -> None:
    result = shardsim_run("scenarios/priority_replica_wins.py", "--seed", "5", runs_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = only_run_dir(tmp_path)
    verdicts = json.loads((run_dir / "verdicts.json").read_text())
    assert verdicts["seed"] == 5 and verdicts["exit_code"] == 0
    assert {r["name"] for r in verdicts["results"]} >= {"no_lost_writes", "priority_oracle"}
    records = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    types = [r["type"] for r in records]
    assert types[0] == "meta" and "invoke" in types and "ok" in types and "final" in types
    kinds = {r["event"]["kind"] for r in records if r["type"] == "event"}
    assert {"replica.state", "transfer.started", "transfer.finished", "snapshot.created"} <= kinds
    assert "<svg" in (run_dir / "report.html").read_text()
    assert "held" in result.stdout and "report:" in result.stdout


def test_lost_writes_are_a_correctness_failure_with_the_replay_command(tmp_path: Path) -> None:
    result = shardsim_run(str(HERE / "scenarios/lost_writes.py"), "--seed", "7", runs_dir=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "VIOLATED" in result.stdout
    assert f"replay: shardsim run {HERE / 'scenarios/lost_writes.py'} --seed 7" in result.stdout
    verdicts = json.loads((only_run_dir(tmp_path) / "verdicts.json").read_text())
    lost = [r for r in verdicts["results"] if r["name"] == "no_lost_writes"][0]
    assert lost["valid"] is False


def test_a_plan_waiting_in_vain_is_a_liveness_failure(tmp_path: Path) -> None:
    result = shardsim_run(str(HERE / "scenarios/never_happens.py"), runs_dir=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "LIVENESS" in result.stdout


def test_a_crashing_plan_is_the_tool_failing(tmp_path: Path) -> None:
    result = shardsim_run(str(HERE / "scenarios/tool_bug.py"), runs_dir=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "a bug in the plan itself" in result.stdout
    assert (only_run_dir(tmp_path) / "crash.txt").exists()


def test_a_folder_runs_every_scenario_with_a_summary_and_the_worst_exit(tmp_path: Path) -> None:
    folder = tmp_path / "some"
    folder.mkdir()
    for name in ("never_happens.py", "lost_writes.py"):
        (folder / name).write_text((HERE / "scenarios" / name).read_text())
    result = shardsim_run(str(folder), runs_dir=tmp_path / "runs")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = result.stdout.split("scenario                               seed")[1]
    assert "lost_writes" in summary and "never_happens" in summary


def test_faults_keyed_to_transfer_phases_fire_at_their_phase(tmp_path: Path) -> None:
    """at_queued(10) and at_phase("restored") (held before Partial by transfer_phase_pause_s) both fire, in
    order, and the cut made after the restore fails that attempt: the plan checks each and says so."""
    result = shardsim_run(str(HERE / "scenarios/phase_keyed.py"), runs_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the source has queued" in result.stdout
    assert "restored on the target, not yet Partial" in result.stdout
