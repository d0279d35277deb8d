"""Every scenario holds in simulation, a seed replays a run byte for byte, and `--check-determinism` proves it
across processes (CI runs it on every scenario; the seeds 1-20 sweep is in docs/simulation.md)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sim import sim_unavailable

if sim_unavailable:
    pytest.skip(sim_unavailable, allow_module_level=True)

from cluster.runner.run import RunOptions  # noqa: E402
from cluster.sim.run import first_difference, scenario_run_sim  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.py"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_holds_in_simulation(path: Path, tmp_path: Path) -> None:
    run = scenario_run_sim(path.relative_to(ROOT), 2, RunOptions(runs_dir=tmp_path), quiet=True)
    failed = [f"{r.name}: {r.summary}" for r in run.result.results if r.valid is False]
    assert run.result.exit_code == 0, (run.result.error, failed, run.result.run_dir)
    verdicts = json.loads((run.result.run_dir / "verdicts.json").read_text())
    assert verdicts["mode"] == "simulation" and verdicts["command"].endswith("--sim --seed 2")


def test_a_seed_replays_the_history_byte_for_byte_phase_keyed_faults_included(tmp_path: Path) -> None:
    scenario = Path("scenarios/source_paused_mid_transfer.py")
    histories = []
    for replay in ("a", "b", "a-other-seed"):
        seed = 3 if replay != "a-other-seed" else 4
        run = scenario_run_sim(ROOT / scenario, seed, RunOptions(runs_dir=tmp_path / replay), quiet=True)
        histories.append((run.result.run_dir / "history.jsonl").read_bytes())
    assert first_difference(histories[0], histories[1]) is None
    assert first_difference(histories[0], histories[2]) is not None
    pauses = [json.loads(line)["time"] for line in histories[0].splitlines() if b'"fault":"node_pause"' in line]
    assert pauses, "the phase-keyed pause fired"


def test_a_scenario_built_in_code_runs_in_simulation_with_its_replay_command(tmp_path: Path) -> None:
    from cluster.runner.scenario import scenario_load
    scenario = dataclasses.replace(scenario_load(ROOT / "scenarios" / "priority_replica_wins.py"), name="built")
    run = scenario_run_sim(scenario, 9, RunOptions(runs_dir=tmp_path), quiet=True, command="replay me --seed 9")
    assert run.result.exit_code == 0 and run.result.run_dir.name.startswith("built-seed9-sim-")
    assert json.loads((run.result.run_dir / "verdicts.json").read_text())["command"] == "replay me --seed 9"


def test_check_determinism_runs_twice_in_fresh_processes_and_compares(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cluster.cli", "run", "scenarios/priority_replica_wins.py", "--sim",
                             "--seed", "5", "--check-determinism", "--runs-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deterministic (" in result.stdout and "PYTHONHASHSEED 1 and 2" in result.stdout
    histories = sorted(tmp_path.rglob("history.jsonl"))
    assert len(histories) == 2 and histories[0].read_bytes() == histories[1].read_bytes()


NONDETERMINISTIC = '''"""A scenario that reads the OS's randomness behind the seed's back (what --check-determinism catches)."""
import itertools
import os

from cluster.runner import CollectionSpec, RunContext, Scenario


async def plan(ctx: RunContext) -> None:
    ctx.ids = itertools.count(1 + int.from_bytes(os.urandom(6)))  # point ids the seed does not choose
    await ctx.load("c", 10)


SCENARIO = Scenario(name="nondeterministic", description=__doc__, plan=plan, nodes=1,
                    collections={"c": CollectionSpec(shard_number=1, replication_factor=1, vector_size=4)})
'''


def test_check_determinism_names_the_first_differing_line_of_a_run_that_does_not_replay(tmp_path: Path) -> None:
    scenario = tmp_path / "nondeterministic.py"
    scenario.write_text(NONDETERMINISTIC)
    result = subprocess.run([sys.executable, "-m", "cluster.cli", "run", str(scenario), "--sim", "--seed", "1",
                             "--check-determinism", "--runs-dir", str(tmp_path / "runs")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "NOT deterministic" in result.stdout and "history.jsonl differs first at line" in result.stdout
    differing = [line for line in result.stdout.splitlines() if "replay-" in line and "history" not in line]
    assert len(differing) == 2 and differing[0].split(": ", 1)[1] != differing[1].split(": ", 1)[1]


def test_first_difference_names_the_first_line_that_differs() -> None:
    assert first_difference(b"a\nb\nc\n", b"a\nb\nc\n") is None
    assert first_difference(b"a\nb\nc\n", b"a\nB\nc\n") == (2, "b", "B")
    assert first_difference(b"a\nb\n", b"a\n") == (2, "b", "(end of file)")
