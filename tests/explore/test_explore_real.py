"""The explorer on real processes, kept few and small (each run starts a cluster): a replayed schedule with
a phase-keyed kill is judged by every checker, `shardsim explore` writes its coverage map, and a planted bug
is found and shrunk, each candidate run twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cluster.explore.schedule import schedule_normalize, schedule_save
from cluster.explore.shrink import CONFIRM_REAL, shrink
from cluster.explore.workers import WorkerPool, schedule_execute
from node.plant import ENVIRONMENT_VARIABLE

ROOT = Path(__file__).resolve().parents[2]


def moving(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": 1, "name": "real-move", "seed": 4, "nodes": 3,
        "collections": [{"name": "c", "shards": 2, "replication_factor": 1}],
        "workload": {"load": 200, "writers": 1, "overwrites": True},
        "steps": [{"op": "move", "collection": "c", "shard": 0,
                   "faults": [{"kind": "kill_target", "phase": "restored", "duration_ms": 800}]}],
    }
    document.update(changes)
    return schedule_normalize(document)


@pytest.mark.timeout(240)
def test_a_replayed_schedule_reaches_its_cell_and_holds(tmp_path: Path) -> None:
    result, summary = schedule_execute(moving(), tmp_path)
    assert result.exit_kind == "ok", [f"{r.name}: {r.summary}" for r in result.results]
    assert set(summary.verdicts) == {"no_lost_writes", "replicas_converge", "nothing_stuck", "replication_factor",
                                     "no_extra_replicas", "transfer_retries"}
    assert "kill_target|restored|move|none" in summary.cells
    assert (result.run_dir / "report.html").exists()


@pytest.mark.timeout(300)
def test_shardsim_explore_writes_its_coverage_map(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cluster.cli", "explore", "--seeds", "2", "--size", "2",
                           "--workers", "2", "--runs-dir", str(tmp_path), "--no-shrink"], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("] seed ") == 2 and "2 schedules in" in done.stdout
    folder = next(tmp_path.glob("explore-*"))
    coverage = json.loads((folder / "coverage.json").read_text())
    assert coverage["runs"] == 2 and coverage["cells_reachable"] == 384
    assert "<table>" in (folder / "coverage.html").read_text()


@pytest.mark.timeout(420)
def test_a_planted_bug_is_found_and_shrunk_on_real_processes(tmp_path: Path) -> None:
    """`move_keeps_source`: a finished move keeps its source replica; no_extra_replicas sees it."""
    schedule = moving(steps=[{"op": "move", "collection": "c", "shard": 0}, {"op": "wait", "ms": 300},
                             {"op": "snapshot", "label": "s1", "collection": "c", "shard": 1}])
    path = tmp_path / "found.json"
    schedule_save(schedule, path)
    with WorkerPool(2, tmp_path / "runs", sim=False, env={ENVIRONMENT_VARIABLE: "move_keeps_source"}) as pool:
        first = pool.submit(schedule, 200).result()
        assert "no_extra_replicas" in first.violated, first.summaries
        result = shrink(schedule, "no_extra_replicas", pool, batch=2, runs_max=2 * CONFIRM_REAL,
                        confirm=CONFIRM_REAL, say=lambda _line: None)
    assert result.accepted == ["step 2 (snapshot) removed", "step 1 (wait) removed"]
    assert [step["op"] for step in result.schedule["steps"]] == ["move"] and result.runs == 2 * CONFIRM_REAL
    with WorkerPool(1, tmp_path / "clean", sim=False, env={ENVIRONMENT_VARIABLE: ""}) as pool:
        clean = pool.submit(result.schedule, 200).result()
    assert clean.violated == [], clean.summaries
