"""What the explorer found in shardsim stays found: every schedule in `scenarios/found/` is a regression test.

Each one broke an invariant before its fix. In simulation (Python 3.12+ with cluster/sim) it replays exactly
the run that broke it, so it must hold now; on real processes it runs as well (a race found in simulation is
rarely hit there, but the schedule must hold all the same). Its scenario file is the translation of its
schedule, so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.explore.codegen import scenario_source
from cluster.explore.schedule import schedule_load
from cluster.explore.workers import schedule_execute, sim_unavailable

ROOT = Path(__file__).resolve().parents[2]
FOUND = sorted((ROOT / "scenarios" / "found").glob("*.json"))


def test_something_was_found() -> None:
    assert FOUND, "scenarios/found/ holds the explorer's findings"


@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_the_scenario_file_is_the_schedules_translation(path: Path) -> None:
    text = path.with_suffix(".py").read_text()
    schedule = schedule_load(path)
    plan = scenario_source(schedule, path_hint=f"scenarios/found/{path.stem}").split("async def plan", 1)[1]
    assert plan in text


@pytest.mark.timeout(300)
@pytest.mark.skipif(sim_unavailable() is not None, reason=str(sim_unavailable()))
@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_a_found_schedule_holds_in_simulation(path: Path, tmp_path: Path) -> None:
    result, summary = schedule_execute(schedule_load(path), tmp_path, sim=True, schedule_path=path)
    assert summary.violated == [], f"{path.name}: {summary.summaries} ({result.run_dir})"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_a_found_schedule_holds_on_real_processes(path: Path, tmp_path: Path) -> None:
    result, summary = schedule_execute(schedule_load(path), tmp_path, schedule_path=path)
    assert summary.violated == [], f"{path.name}: {summary.summaries} ({result.run_dir})"
