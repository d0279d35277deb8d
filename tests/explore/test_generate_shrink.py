"""The generator draws valid schedules from seeds and steers toward unreached cells; the shrinker keeps the
smallest schedule that still violates the same invariant. Pure logic: a fake pool stands for the runs."""

from __future__ import annotations

import concurrent.futures
from collections import Counter
from pathlib import Path
from typing import Any

from cluster.explore.coverage import CoverageMap, cells_reachable
from cluster.explore.generate import schedule_generate
from cluster.explore.schedule import schedule_checkers, schedule_normalize, schedule_size
from cluster.explore.shrink import candidates, shrink
from cluster.explore.workers import RunSummary


def test_a_seed_gives_one_valid_schedule() -> None:
    for seed in range(1, 120):
        schedule = schedule_generate(seed)
        assert schedule_normalize(schedule) == schedule
        assert schedule_generate(seed) == schedule, "a pure function of the seed"
        assert schedule["seed"] == seed and schedule_checkers(schedule)


def test_schedules_vary_every_operation_kind() -> None:
    ops = Counter(step["op"] for seed in range(1, 300) for step in schedule_generate(seed)["steps"])
    assert set(ops) == {"move", "replicate", "drop", "snapshot", "recover", "restart", "create_collection",
                        "fault", "wait"}
    faults = Counter(f["kind"] for seed in range(1, 300) for step in schedule_generate(seed)["steps"]
                     for f in step.get("faults", []))
    assert len(faults) == 16, faults


def test_the_generator_steers_toward_cells_not_yet_reached() -> None:
    coverage = CoverageMap()
    left_out = ("kill_source", "partial", "move", "none")
    for cell in cells_reachable():
        if cell != left_out:
            coverage.add({cell}, violated=False, seed=0)
            coverage.add({cell}, violated=False, seed=0)
    targeted = sum("kill_source/partial/move/none" in schedule_generate(seed, coverage)["note"]
                   for seed in range(1, 41))
    assert targeted >= 30, "a cell never reached is drawn far more often than the others (1/(1+runs)^2)"


class FakePool:
    """Runs nothing: a schedule 'violates' `invariant` when `fails(schedule)` says so."""

    def __init__(self, fails: Any) -> None:
        self.fails = fails
        self.submitted = 0

    def submit(self, schedule: dict[str, Any], deadline_s: float) -> concurrent.futures.Future[RunSummary]:
        self.submitted += 1
        future: concurrent.futures.Future[RunSummary] = concurrent.futures.Future()
        violated = ["no_extra_replicas"] if self.fails(schedule) else []
        future.set_result(RunSummary(schedule["name"], schedule["seed"], "simulation", "ok", {}, {}, violated, [],
                                     str(Path("/nonexistent")), 0.0, None, schedule))
        return future


def killed_target_at_restored(schedule: dict[str, Any]) -> bool:
    return any(f["kind"] == "kill_target" and f["phase"] == "restored"
               for step in schedule["steps"] if step["op"] == "move" for f in step["faults"])


def big_schedule() -> dict[str, Any]:
    return schedule_normalize({
        "format": 1, "name": "big", "seed": 9, "nodes": 4,
        "collections": [{"name": "c", "shards": 3, "replication_factor": 2, "vectors": "named", "vector_size": 16}],
        "workload": {"load": 800, "writers": 2, "overwrites": True, "deletes": True, "reads": True, "batch": 5},
        "steps": [
            {"op": "snapshot", "label": "s1", "collection": "c", "shard": 1},
            {"op": "drop", "collection": "c", "shard": 2, "replica": 1},
            {"op": "replicate", "collection": "c", "shard": 2, "source": 1, "target": 2,
             "faults": [{"kind": "latency", "phase": "mid_stream", "amount": 800, "duration_ms": 4000}]},
            {"op": "move", "collection": "c", "shard": 1, "source": 1, "target": 2, "stream_kb_s": 40,
             "faults": [{"kind": "link_down", "phase": "before_stream", "duration_ms": 6000},
                        {"kind": "kill_target", "phase": "restored", "delay_ms": 300, "duration_ms": 3000}]},
            {"op": "restart", "node": 3},
            {"op": "wait", "ms": 1500},
            {"op": "fault", "fault": {"kind": "partition", "on": "source", "duration_ms": 2500}},
        ],
        "timed_faults": [{"kind": "bandwidth", "at_ms": 3000, "amount": 50, "duration_ms": 2500}],
    })


def test_shrinking_keeps_only_what_the_violation_needs() -> None:
    pool = FakePool(killed_target_at_restored)
    result = shrink(big_schedule(), "no_extra_replicas", pool, batch=2, runs_max=400, confirm=1, say=lambda _: None)  # type: ignore[arg-type]
    shrunk = result.schedule
    assert killed_target_at_restored(shrunk)
    assert [step["op"] for step in shrunk["steps"]] == ["move"]
    assert shrunk["steps"][0]["faults"] == [{"kind": "kill_target", "phase": "restored", "at_ms": None,
                                             "fraction": 0.5, "delay_ms": 0, "duration_ms": 100, "on": None,
                                             "amount": None}]
    assert shrunk["timed_faults"] == [] and shrunk["nodes"] == 2 and shrunk["collections"][0]["replication_factor"] == 1
    assert shrunk["collections"][0]["shards"] == 1 and shrunk["collections"][0]["vectors"] == "dense"
    assert shrunk["workload"]["writers"] == 0 and not shrunk["workload"]["overwrites"]
    assert schedule_size(shrunk) < schedule_size(big_schedule())
    assert result.runs == pool.submitted


def test_a_shrinker_stuck_on_one_seed_tries_the_removals_under_other_seeds() -> None:
    """A violation that needs an interleaving: under the original seed it shows only with every step, but
    the move with its kill alone shows it under the next seed. The re-seeded removal is kept."""
    original = big_schedule()

    def fails(schedule: dict[str, Any]) -> bool:
        if not killed_target_at_restored(schedule):
            return False
        return len(schedule["steps"]) == len(original["steps"]) or schedule["seed"] == original["seed"] + 1

    said: list[str] = []
    result = shrink(original, "no_extra_replicas", FakePool(fails), batch=2, runs_max=400, confirm=1, say=said.append)  # type: ignore[arg-type]
    assert result.schedule["seed"] == original["seed"] + 1
    assert [step["op"] for step in result.schedule["steps"]] == ["move"]
    assert any(f"seed {original['seed'] + 1}" in words for words in result.accepted), said


def test_shrinking_in_real_mode_accepts_only_consistent_failures() -> None:
    flaky = iter([True, False] * 500)
    pool = FakePool(lambda schedule: killed_target_at_restored(schedule) and next(flaky))
    result = shrink(big_schedule(), "no_extra_replicas", pool, batch=2, runs_max=60, confirm=2, say=lambda _: None)  # type: ignore[arg-type]
    assert result.accepted == [] and result.schedule == big_schedule()


def test_every_candidate_is_smaller_or_invalid() -> None:
    schedule = big_schedule()
    for _words, candidate in candidates(schedule):
        try:
            normal = schedule_normalize(candidate)
        except ValueError:
            continue
        assert schedule_size(normal) <= schedule_size(schedule)
