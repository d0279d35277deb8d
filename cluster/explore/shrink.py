"""Shrinking a failing schedule: smaller and smaller while it still violates the same invariant.

Greedy, as property-based testing shrinks: from the current schedule, `candidates` proposes smaller ones
(fewer timed faults, steps, faults in a step; a simpler workload; fewer collections, shards, nodes, a
smaller replication factor; smaller numbers: delays, durations, amounts, indices), in that order. Only
valid schedules strictly smaller by `schedule_size` are tried, so shrinking ends. They run K at a time in
the worker pool; the first in order that still violates the invariant becomes the current one, and the
proposals start again from it. In simulation a run is exact, so one failing run decides; on real processes
a candidate is accepted only if it fails every one of `confirm` runs.

A run's scheduling is a function of its seed and of everything before, so removing a step moves every later
instant and a violation that needs a narrow interleaving can vanish for that reason alone, leaving the
shrinker stuck on a large schedule. When a whole round fails, the removals of faults and steps are tried
once more under other seeds (`RESEED_OFFSETS` added to the schedule's own); a re-seeded schedule replays as
exactly as the original, it is only another draw of the same test. At most `RESEED_ROUNDS` such rounds.

`finding_shrink_and_write` shrinks one finding and writes it to the found folder as a schedule and as a
readable scenario file (codegen.py), says how much it shrank, and, asked to, whether the shrunk schedule
also fails on real processes.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.explore.codegen import scenario_source
from cluster.explore.schedule import ScheduleError, schedule_normalize, schedule_save, schedule_size
from cluster.explore.workers import RunSummary, WorkerPool, deadline_of, wall_s

SHRINK_RUNS_SIM = 80
SHRINK_RUNS_REAL = 24
CONFIRM_REAL = 2
RESEED_OFFSETS = (1, 2)
RESEED_ROUNDS = 3
RESEED_PROPOSALS = 6  # the first removals of faults or steps, each tried under every offset
Schedule = dict[str, Any]


@dataclass
class ShrinkResult:
    original: Schedule
    schedule: Schedule
    invariant: str
    runs: int = 0
    seconds: float = 0.0
    accepted: list[str] = field(default_factory=list)
    last: RunSummary | None = None
    replayed: bool | None = None  # the shrunk schedule, run once more, still violated the invariant
    real_failing: int | None = None  # of CONFIRM_REAL runs on real processes, how many violated it


def changed(schedule: Schedule, change: Callable[..., object], *args: Any) -> Schedule:
    """A deep copy of `schedule` after `change(copy, *args)`."""
    result = copy.deepcopy(schedule)
    change(result, *args)
    return result


def step_faults(step: dict[str, Any]) -> list[dict[str, Any]]:
    if step["op"] == "fault":
        return [step["fault"]]
    return list(step.get("faults") or [])


def candidates(schedule: Schedule) -> Iterator[tuple[str, Schedule]]:
    """Smaller variants of `schedule`, most promising first, each with a few words saying what changed."""
    steps = schedule["steps"]
    for index in range(len(schedule["timed_faults"])):
        yield f"timed fault {index} removed", changed(schedule, lambda s, i: s["timed_faults"].pop(i), index)
    for chunk in (len(steps) // 2, len(steps) // 4):
        if chunk >= 2:
            for start in range(0, len(steps), chunk):
                yield f"steps {start}..{start + chunk - 1} removed", changed(
                    schedule, lambda s, a, n: s.__setitem__("steps", s["steps"][:a] + s["steps"][a + n:]), start, chunk)
    for index in reversed(range(len(steps))):
        yield f"step {index} ({steps[index]['op']}) removed", changed(schedule, lambda s, i: s["steps"].pop(i), index)
        partner = partner_of(steps, index)
        if partner is not None:
            yield f"steps {index} and {partner} removed together", changed(
                schedule, lambda s, i, j: [s["steps"].pop(k) for k in sorted((i, j), reverse=True)], index, partner)
    for index, step in enumerate(steps):
        for number, _fault in enumerate(step.get("faults") or []):
            yield f"fault {number} of step {index} removed", changed(
                schedule, lambda s, i, n: s["steps"][i]["faults"].pop(n), index, number)
        for key in ("abort_at", "stream_kb_s"):
            if step.get(key) is not None:
                yield f"{key} of step {index} removed", changed(
                    schedule, lambda s, i, k: s["steps"][i].__setitem__(k, None), index, key)
    yield from workload_candidates(schedule)
    yield from shape_candidates(schedule)
    yield from number_candidates(schedule)


def partner_of(steps: list[dict[str, Any]], index: int) -> int | None:
    """The step that must go with step `index`: a drop's replicate, a snapshot's recovery."""
    step = steps[index]
    for other in range(index + 1, len(steps)):
        candidate = steps[other]
        if step["op"] == "drop" and candidate["op"] == "replicate" and \
                (candidate["collection"], candidate["shard"]) == (step["collection"], step["shard"]):
            return other
        if step["op"] == "snapshot" and candidate["op"] == "recover" and candidate["label"] == step["label"]:
            return other
    return None


def workload_candidates(schedule: Schedule) -> Iterator[tuple[str, Schedule]]:
    workload = schedule["workload"]
    for key in ("reads", "deletes", "overwrites"):
        if workload[key]:
            yield f"no {key}", changed(schedule, lambda s, k: s["workload"].__setitem__(k, False), key)
    if workload["writers"] > 0:
        yield "one writer fewer", changed(schedule, lambda s: s["workload"].__setitem__("writers",
                                                                                     s["workload"]["writers"] - 1))
    if workload["load"] > 10:
        yield "the least load", changed(schedule, lambda s: s["workload"].__setitem__("load", 10))
        yield "half the load", changed(schedule, lambda s: s["workload"].__setitem__("load",
                                                                                  max(10, s["workload"]["load"] // 2)))
    if workload["batch"] > 1:
        yield "batches of one", changed(schedule, lambda s: s["workload"].__setitem__("batch", 1))


def shape_candidates(schedule: Schedule) -> Iterator[tuple[str, Schedule]]:
    for index, collection in enumerate(schedule["collections"]):
        if collection["created"] == "step":
            def drop_collection(s: Schedule, name: str = collection["name"]) -> None:
                s["collections"] = [c for c in s["collections"] if c["name"] != name]
                s["steps"] = [t for t in s["steps"] if t.get("collection") != name]
            yield f"collection {collection['name']} removed", changed(schedule, drop_collection)
        if collection["shards"] > 1:
            def fewer_shards(s: Schedule, i: int = index) -> None:
                spec = s["collections"][i]
                spec["shards"] -= 1
                for step in s["steps"]:
                    if step.get("collection") == spec["name"] and step.get("shard") is not None:
                        step["shard"] = min(step["shard"], spec["shards"] - 1)
            yield f"one shard fewer in {collection['name']}", changed(schedule, fewer_shards)
        if collection["replication_factor"] > 1:
            yield f"replication factor of {collection['name']} lowered", changed(
                schedule, lambda s, i: s["collections"][i].__setitem__(
                    "replication_factor", s["collections"][i]["replication_factor"] - 1), index)
        if collection["vectors"] != "dense" or collection["vector_size"] > 4:
            yield f"plain small vectors in {collection['name']}", changed(
                schedule, lambda s, i: s["collections"][i].update(vectors="dense", vector_size=4), index)
    if schedule["nodes"] > 2:
        def fewer_nodes(s: Schedule) -> None:
            s["nodes"] -= 1
            for spec in s["collections"]:
                spec["replication_factor"] = min(spec["replication_factor"], s["nodes"])
        yield "one node fewer", changed(schedule, fewer_nodes)


def number_candidates(schedule: Schedule) -> Iterator[tuple[str, Schedule]]:
    for index, step in enumerate(schedule["steps"]):
        for key in ("source", "target", "replica", "node"):
            if step.get(key):
                yield f"{key} of step {index} to 0", changed(
                    schedule, lambda s, i, k: s["steps"][i].__setitem__(k, 0), index, key)
        if step["op"] == "wait" and step["ms"] > 50:
            yield f"half the wait of step {index}", changed(
                schedule, lambda s, i: s["steps"][i].__setitem__("ms", s["steps"][i]["ms"] // 2), index)
        for number, fault in enumerate(step_faults(step)):
            yield from fault_number_candidates(schedule, fault, f"fault {number} of step {index}",
                                               ("steps", index, number))
    for number, fault in enumerate(schedule["timed_faults"]):
        yield from fault_number_candidates(schedule, fault, f"timed fault {number}", ("timed_faults", number, 0))
        if fault["at_ms"] > 0:
            yield f"timed fault {number} earlier", changed(
                schedule, lambda s, n: s["timed_faults"][n].__setitem__("at_ms", s["timed_faults"][n]["at_ms"] // 2), number)


FaultPlace = tuple[str, int, int]  # ("steps", step index, fault index) or ("timed_faults", index, 0)


def fault_at(schedule: Schedule, place: FaultPlace) -> dict[str, Any]:
    where, index, number = place
    if where == "timed_faults":
        found: dict[str, Any] = schedule["timed_faults"][index]
        return found
    return step_faults(schedule["steps"][index])[number]


def fault_set(schedule: Schedule, place: FaultPlace, key: str, value: Any) -> None:
    fault_at(schedule, place)[key] = value


def fault_number_candidates(schedule: Schedule, fault: dict[str, Any], what: str,
                            place: FaultPlace) -> Iterator[tuple[str, Schedule]]:
    if fault["delay_ms"]:
        yield f"{what} without delay", changed(schedule, fault_set, place, "delay_ms", 0)
    if fault["duration_ms"] > 100:
        yield f"{what} as short as can be", changed(schedule, fault_set, place, "duration_ms", 100)
        yield f"{what} half as long", changed(schedule, fault_set, place, "duration_ms",
                                              max(100, fault["duration_ms"] // 2))
    if fault.get("amount"):
        yield f"{what} half the amount", changed(schedule, fault_set, place, "amount", fault["amount"] // 2)


def still_valid(candidate: Schedule, current_size: tuple[int, ...]) -> Schedule | None:
    try:
        normal = schedule_normalize(candidate)
    except ScheduleError:
        return None
    return normal if schedule_size(normal) < current_size else None


def shrink(schedule: Schedule, invariant: str, pool: WorkerPool, batch: int, runs_max: int, confirm: int,
           say: Callable[[str], None]) -> ShrinkResult:
    """Shrink `schedule` while it still violates `invariant` (see the module docstring). After a success the
    next proposals start where that one stood in the list (more of the same kind of change first) and wrap
    around; shrinking ends when a whole round of proposals fails, or at `runs_max` runs. A proposal already
    run and found holding is not run again."""
    started = wall_s()
    result = ShrinkResult(schedule, schedule, invariant)
    held: set[str] = set()
    position = 0
    reseeds = 0

    def attempt(proposals: list[tuple[str, Schedule]], start: int) -> int | None:
        """Run proposals K at a time from `start` (wrapping); the index of the first that still violates."""
        ordered = list(enumerate(proposals))
        ordered = ordered[start:] + ordered[:start]
        while ordered and result.runs < runs_max:
            chunk, ordered = ordered[:max(1, batch // confirm)], ordered[max(1, batch // confirm):]
            futures = [[pool.submit(candidate, deadline_of(candidate)) for _ in range(confirm)]
                       for _index, (_words, candidate) in chunk]
            result.runs += confirm * len(chunk)
            for (index, (words, candidate)), runs in zip(chunk, futures, strict=True):
                summaries = [future.result() for future in runs]
                if all(invariant in summary.violated for summary in summaries):
                    result.schedule, result.last = candidate, summaries[-1]
                    result.accepted.append(words)
                    say(f"  shrunk: {words} (size {schedule_size(candidate)}, {result.runs} runs)")
                    return index
                if not any(invariant in summary.violated for summary in summaries):
                    held.add(json.dumps(candidate, sort_keys=True))
        return None

    while result.runs < runs_max:
        size = schedule_size(result.schedule)
        proposals = [(words, normal) for words, candidate in candidates(result.schedule)
                     if (normal := still_valid(candidate, size)) is not None
                     and json.dumps(normal, sort_keys=True) not in held]
        if not proposals:
            break
        position %= len(proposals)
        accepted = attempt(proposals, position)
        if accepted is None and reseeds < RESEED_ROUNDS:
            reseeds += 1
            removals = [(words, candidate) for words, candidate in proposals
                        if schedule_size(candidate)[:2] < size[:2]][:RESEED_PROPOSALS]
            reseeded = [(f"{words}, seed {candidate['seed'] + offset}", {**candidate, "seed": candidate["seed"] + offset})
                        for offset in RESEED_OFFSETS for words, candidate in removals]
            reseeded = [(words, c) for words, c in reseeded if json.dumps(c, sort_keys=True) not in held]
            if reseeded and attempt(reseeded, 0) is not None:
                position = 0
                continue
        if accepted is None:
            break
        position = accepted
    result.seconds = wall_s() - started
    return result


def found_name(invariant: str, seed: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', invariant)}-seed{seed}"


def finding_shrink_and_write(summary: RunSummary, invariant: str, folder: Path, found_dir: Path, sim: bool,
                             workers: int, runs_max: int | None, confirm_real: bool,
                             say: Callable[[str], None], env: dict[str, str] | None = None) -> ShrinkResult:
    """Shrink a finding, write it under `found_dir` (NAME.json and NAME.py), and say what came of it."""
    say(f"\nshrinking the {invariant} finding of seed {summary.seed} "
        f"({'simulation' if sim else 'real processes, each candidate run ' + str(CONFIRM_REAL) + ' times'})")
    confirm = 1 if sim else CONFIRM_REAL
    limit = runs_max if runs_max is not None else (SHRINK_RUNS_SIM if sim else SHRINK_RUNS_REAL)
    with WorkerPool(workers, folder / "shrink", sim, env) as pool:
        result = shrink(summary.schedule, invariant, pool, max(workers, confirm), limit, confirm, say)
        again = pool.submit(result.schedule, deadline_of(result.schedule)).result()
    before, after = summary.schedule, result.schedule
    words = (f"shrunk from {len(before['steps'])} steps and {schedule_size(before)[0]} faults to "
             f"{len(after['steps'])} steps and {schedule_size(after)[0]} faults in {result.runs} runs "
             f"({result.seconds:.0f} s)")
    replayed = result.replayed = invariant in again.violated
    say(f"  {words}; replayed once more: {'still violates' if replayed else 'DID NOT violate'} {invariant}")
    real_words = "not checked on real processes"
    if sim and confirm_real:
        with WorkerPool(1, folder / "confirm-real", False, env) as real_pool:
            real = [real_pool.submit(result.schedule, deadline_of(result.schedule)).result()
                    for _ in range(CONFIRM_REAL)]
        failing = result.real_failing = sum(invariant in run.violated for run in real)
        real_words = f"fails on real processes: {'yes' if failing else 'no'} ({failing} of {len(real)} runs)"
        say(f"  {real_words}")
    name = found_name(invariant, summary.seed)
    final = dict(after, name=name, note=f"Found by shardsim explore: violates {invariant} "
                 f"({(result.last or summary).summaries.get(invariant, '')}). The original schedule had seed "
                 f"{summary.seed}; {words}; {real_words}.")
    found_dir.mkdir(parents=True, exist_ok=True)
    schedule_save(final, found_dir / f"{name}.json")
    (found_dir / f"{name}.py").write_text(scenario_source(
        final, title=f"Found by the explorer: violates `{invariant}`.", path_hint=str(found_dir / name)))
    say(f"  written: {found_dir / (name + '.py')} and {name}.json")
    say(f"  replay: shardsim replay {found_dir / (name + '.json')}{' --sim' if sim else ''}")
    result.schedule = final
    return result
