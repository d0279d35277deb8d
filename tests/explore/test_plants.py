"""The explorer's power, proven in simulation: each bug planted in the running code (node/plant.py) is found
within a bounded number of seeds (80; 240 for the one that shows only when the updates replayed after a finish are lost) and shrunk to a
small schedule that still fails the same invariant; with no bug planted, the same budget finds nothing.

One worker, so the sequence of schedules is a function of the first seed and the code: each schedule is
drawn with the coverage of every run before it, and every run replays exactly. Runs in a Python 3.12+
environment with the simulation (cluster/sim); skipped elsewhere. About ten minutes in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.explore.loop import explore
from cluster.explore.schedule import schedule_size
from cluster.explore.shrink import finding_shrink_and_write
from cluster.explore.workers import sim_unavailable
from node.plant import ENVIRONMENT_VARIABLE, PLANTS

pytestmark = pytest.mark.skipif(sim_unavailable() is not None, reason=str(sim_unavailable()))

SEEDS = 80  # the budget: schedules per plant
SEEDS_HARD = {"active_before_replay": 240}  # it shows only when the updates replayed after the finish are lost
SEEDS_MAX = max(SEEDS, *SEEDS_HARD.values())  # and for the run with no plant
SHRINK_RUNS = 80
SHRUNK_MAX = 5  # steps and faults in all (a drop and its replicate are two steps); generated ones have about ten
INVARIANTS = {  # what each plant breaks, as the checkers name it
    "queue_not_replayed": {"no_lost_writes", "replicas_converge"},
    "active_before_replay": {"no_lost_writes", "replicas_converge"},
    "two_attempts": {"transfer_retries"},
    "snapshot_priority_keeps_others": {"replicas_converge", "priority_oracle"},
    "aborted_replicate_left_recovery": {"nothing_stuck"},
    "abort_keeps_move_target": {"no_extra_replicas"},
    "move_keeps_source": {"no_extra_replicas", "replicas_converge"},
    "recovery_skips_checksum": {"snapshot_integrity"},
}


def test_every_plant_has_its_invariant() -> None:
    assert set(INVARIANTS) == set(PLANTS)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_planted_bug_is_found_and_shrunk(plant: str, tmp_path: Path) -> None:
    said: list[str] = []
    env = {ENVIRONMENT_VARIABLE: plant}
    exploration = explore(SEEDS_HARD.get(plant, SEEDS), None, None, 1, 1, None, tmp_path, True, said.append, env,
                          stop_at_finding=INVARIANTS[plant])
    found = {name: runs for name, runs in exploration.findings.items() if name in INVARIANTS[plant]}
    assert found, f"{plant} not found in {len(exploration.runs)} seeds:\n" + "\n".join(said[-10:])
    invariant, runs = next(iter(found.items()))
    result = finding_shrink_and_write(runs[0], invariant, tmp_path, tmp_path / "found", True, 2, SHRINK_RUNS,
                                      False, said.append, env)
    shrunk = result.schedule
    faults, steps = schedule_size(shrunk)[:2]
    assert result.replayed, f"the shrunk schedule of {plant} no longer violates {invariant}:\n" + "\n".join(said)
    assert steps + faults <= SHRUNK_MAX, (
        f"{plant} shrunk only to {steps} steps and {faults} faults:\n" + "\n".join(said))
    assert (tmp_path / "found" / f"{shrunk['name']}.py").exists()
    assert (tmp_path / "found" / f"{shrunk['name']}.json").exists()


@pytest.mark.timeout(1200)
def test_with_no_bug_planted_the_same_budget_finds_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    exploration = explore(SEEDS_MAX, None, None, 1, 1, None, tmp_path, True, said.append, {ENVIRONMENT_VARIABLE: ""})
    assert len(exploration.runs) == SEEDS_MAX
    assert not exploration.findings, "\n".join(line for line in said if "VIOLATED" in line)
    assert not exploration.unjudged, "\n".join(line for line in said if "CRASH" in line or "plan" in line)
