"""One exploration: draw schedules from consecutive seeds, run them in workers, map coverage, shrink findings.

The loop keeps K schedules in flight; each next schedule is drawn with the coverage known so far (so the
generator steers toward cells not yet reached). Every result prints one line. A run that violated an
invariant is a *finding*, kept under `findings/` as its schedule; a run whose plan could not finish or that
crashed the tool is counted apart (it is a defect of the harness or an unjudged run, not a verdict).
At the end: `coverage.json` and `coverage.html`, a summary, and each distinct invariant's first finding
shrunk (shrink.py) and written to the found folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.explore.coverage import CoverageMap
from cluster.explore.generate import schedule_generate, schedule_targets
from cluster.explore.schedule import schedule_save
from cluster.explore.workers import RunSummary, WorkerPool, deadline_of, wall_s

SEEDS_DEFAULT = 20
UNTIL_COVERED_BUDGET_S = 3600.0


@dataclass
class Exploration:
    folder: Path
    sim: bool
    coverage: CoverageMap = field(default_factory=CoverageMap)
    findings: dict[str, list[RunSummary]] = field(default_factory=dict)
    unjudged: list[RunSummary] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    started_s: float = field(default_factory=wall_s)

    def record(self, summary: RunSummary) -> None:
        self.runs.append(summary)
        violation = summary.violation
        judged = summary.exit_kind != "crash" and violation != "plan"
        if judged:
            self.coverage.add(summary.cells, violation is not None, summary.seed)
            self.coverage.planned_add(schedule_targets(summary.schedule))
        else:
            self.unjudged.append(summary)
            target = self.folder / "unjudged" / f"{summary.exit_kind}-seed{summary.seed}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            schedule_save(summary.schedule, target)
        if judged and violation is not None:
            self.findings.setdefault(violation, []).append(summary)
            target = self.folder / "findings" / f"{violation}-seed{summary.seed}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            schedule_save(summary.schedule, target)


def progress_line(index: int, total: str, summary: RunSummary, new_cells: int) -> str:
    violation = summary.violation
    if summary.exit_kind == "crash":
        verdict = f"CRASH {summary.error}"
    elif violation == "plan":
        verdict = "plan did not finish: " + summary.summaries.get("plan", "")[:120]
    elif violation is not None:
        verdict = f"VIOLATED {violation}: {summary.summaries.get(violation, '')[:120]}"
    else:
        verdict = "ok"
    cells = f"{len(summary.cells)} cells" + (f" ({new_cells} new)" if new_cells else "")
    return f"[{index:>4}/{total}] seed {summary.seed:<6} {summary.seconds:6.1f} s  {cells:<16} {verdict}"


def explore_folder(runs_dir: Path, sim: bool) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")  # not simulated: names the exploration's folder
    folder = runs_dir / f"explore-{'sim-' if sim else ''}{stamp}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def explore(seeds: int | None, budget_s: float | None, until_covered: int | None, workers: int, first_seed: int,
            size: int | None, runs_dir: Path, sim: bool, say: Any, env: dict[str, str] | None = None,
            stop_at_finding: bool | set[str] = False) -> Exploration:
    """Run the exploration (no shrinking); `say` gets one line per run. With one worker the sequence of
    schedules is a function of the first seed (in simulation, of the code too): each schedule is drawn with
    the coverage of all the runs before it. `stop_at_finding`: stop at the first violation (True), or at the
    first violation of one of these invariants (a set of checker names)."""
    exploration = Exploration(explore_folder(runs_dir, sim), sim)
    limit = seeds if seeds is not None else (None if budget_s is not None or until_covered else SEEDS_DEFAULT)
    if limit is None and budget_s is None:
        budget_s = UNTIL_COVERED_BUDGET_S  # some reachable cells may be out of this build's reach
    total = str(limit) if limit is not None else "?"
    deadline = exploration.started_s + budget_s if budget_s is not None else None
    seed = first_seed
    in_flight: dict[concurrent.futures.Future[RunSummary], int] = {}

    def more() -> bool:
        if limit is not None and seed - first_seed >= limit:
            return False
        if deadline is not None and wall_s() >= deadline:
            return False
        if stop_at_finding is True and exploration.findings:
            return False
        if isinstance(stop_at_finding, set) and stop_at_finding & set(exploration.findings):
            return False
        return not (until_covered and exploration.coverage.covered(until_covered))

    with WorkerPool(workers, exploration.folder / "runs", sim, env) as pool:
        while True:
            while more() and len(in_flight) < workers:
                schedule = schedule_generate(seed, exploration.coverage, size)
                in_flight[pool.submit(schedule, deadline_of(schedule))] = seed
                seed += 1
            if not in_flight:
                break
            done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                in_flight.pop(future)
                summary = future.result()
                before = exploration.coverage.reached_count()
                exploration.record(summary)
                say(progress_line(len(exploration.runs), total, summary,
                                  exploration.coverage.reached_count() - before))
    exploration.coverage.write(exploration.folder, f"shardsim explore: {len(exploration.runs)} runs "
                                                   f"({'simulation' if sim else 'real processes'})")
    return exploration


def summary_print(exploration: Exploration, say: Any) -> None:
    elapsed = wall_s() - exploration.started_s
    runs = len(exploration.runs)
    coverage = exploration.coverage
    say(f"\n{runs} schedules in {elapsed:.0f} s ({60 * runs / max(elapsed, 1e-9):.1f} per minute), "
        f"{'simulation' if exploration.sim else 'real processes'}")
    say(f"coverage: {coverage.reached_count()} of the reachable cells reached; map in "
        f"{exploration.folder / 'coverage.html'}")
    if exploration.unjudged:
        say(f"{len(exploration.unjudged)} run(s) not judged (the plan did not finish or the tool failed): "
            + ", ".join(f"seed {s.seed}" for s in exploration.unjudged[:10]))
    if not exploration.findings:
        say("no invariant violated")
        return
    for invariant, found in exploration.findings.items():
        say(f"VIOLATED {invariant}: {len(found)} run(s), seeds {', '.join(str(s.seed) for s in found[:10])}; "
            f"first: {found[0].summaries.get(invariant, '')}")


def exploration_run(args: argparse.Namespace) -> int:
    """`shardsim explore` (cluster/explore/cli.py parsed the arguments)."""
    from cluster.explore.shrink import finding_shrink_and_write

    def say(text: str) -> None:
        print(text, flush=True)

    quiet_say = (lambda text: None) if args.quiet else say
    say(f"exploring {'in simulation' if args.sim else 'on real processes'} with {args.workers} worker(s), "
        f"from seed {args.seed}")
    exploration = explore(args.seeds, args.budget, args.until_covered, args.workers, args.seed, args.size,
                          args.runs_dir, args.sim, quiet_say)
    summary_print(exploration, say)
    if exploration.findings and not args.no_shrink:
        for invariant, found in exploration.findings.items():
            finding_shrink_and_write(found[0], invariant, exploration.folder, args.found_dir, args.sim,
                                     args.workers, args.shrink_runs, args.confirm_real, say)
    crashed = any(s.exit_kind == "crash" for s in exploration.unjudged)
    return 1 if exploration.findings else (3 if crashed and not exploration.runs else 0)
