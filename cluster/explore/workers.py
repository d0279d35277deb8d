"""Running schedules: one in this process (`schedule_execute`), or many in worker processes (`WorkerPool`).

A schedule runs through the scenario runner's own `scenario_run`, with the Scenario its scenario file
defines (codegen.py): on real processes (the launcher's `Cluster`), or in simulation (a `SimCluster` on a
seeded `SimEngine` with the in-memory bus, cluster/sim), the switch being `sim`. Each run is summarised as
plain JSON (`RunSummary`): verdicts, the invariants violated, the coverage cells its history reached.

Workers are `python -m cluster.explore.workers` processes that read one job per line on stdin and answer
one summary per line on stdout. A worker ends itself after `JOBS_PER_WORKER` jobs (a simulated run keeps
what killed hosts left until the process ends, docs/simulation.md) and is replaced; a job that outlives its
deadline has its worker killed and is reported as a crash. Planted bugs (node/plant.py) reach workers and
the cluster processes they start through the environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.checkers import CheckResult
from cluster.explore.codegen import GRACE_S, scenario_from_schedule, timeout_s_of
from cluster.explore.coverage import cell_key, cells_reached
from cluster.explore.schedule import schedule_normalize
from cluster.history import history_load
from cluster.runner.run import RunOptions, RunResult, scenario_run

JOBS_PER_WORKER = 25
DEADLINE_MARGIN_S = 240.0
EXIT_PLAN = "plan"


def sim_unavailable() -> str | None:
    """Why this interpreter cannot simulate (one sentence with what to do), or None."""
    from cluster.sim.support import unavailable_reason
    return unavailable_reason()


@dataclass
class RunSummary:
    """What the explorer keeps of one run (plain JSON, sent from worker processes)."""

    name: str
    seed: int
    mode: str
    exit_kind: str
    verdicts: dict[str, bool | None]
    summaries: dict[str, str]
    violated: list[str]
    cells: list[str]
    run_dir: str
    seconds: float  # how long the run took by its clock: virtual seconds in simulation
    error: str | None = None
    schedule: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0  # the real time the run cost

    @property
    def violation(self) -> str | None:
        """The invariant this run violated first (a checker in the schedule's order), `plan` if only the plan
        failed, None if it held."""
        checkers = [v for v in self.violated if v != EXIT_PLAN]
        return checkers[0] if checkers else (EXIT_PLAN if EXIT_PLAN in self.violated else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def of(data: dict[str, Any]) -> RunSummary:
        return RunSummary(**data)


def summary_of(schedule: dict[str, Any], result: RunResult, mode: str) -> RunSummary:
    history_path = result.run_dir / "history.jsonl"
    cells: list[str] = []
    if history_path.exists():
        cells = sorted(cell_key(cell) for cell in cells_reached(history_load(history_path)))
    checks: list[CheckResult] = result.results
    return RunSummary(schedule["name"], schedule["seed"], mode, result.exit_kind,
                      {r.name: r.valid for r in checks}, {r.name: r.summary for r in checks},
                      [r.name for r in checks if r.valid is False], cells, str(result.run_dir),
                      round(result.seconds, 3), result.error, schedule)


def replay_command(schedule_path: Path | None, sim: bool) -> str:
    target = schedule_path if schedule_path is not None else "SCHEDULE.json"
    return f"shardsim replay {target}{' --sim' if sim else ''}"


def schedule_execute(schedule: dict[str, Any], runs_dir: Path, sim: bool = False, quiet: bool = True,
                     schedule_path: Path | None = None, say: Any = None,
                     on_event: Any = None) -> tuple[RunResult, RunSummary]:
    """Run one schedule in this process and judge it; `sim` runs it in simulation; `say` gets the runner's
    progress lines and `on_event` every event of the bus."""
    schedule = schedule_normalize(schedule)
    scenario = scenario_from_schedule(schedule, schedule_path)
    command = replay_command(schedule_path, sim)
    speak = say or (lambda text: None if quiet else print(text, flush=True))
    runs_dir.mkdir(parents=True, exist_ok=True)
    # a folder of its own: a simulated run names its folder by the virtual clock, the same in every replay
    options = RunOptions(runs_dir=Path(tempfile.mkdtemp(prefix=f"{schedule['name']}-", dir=runs_dir)), quiet=quiet,
                         on_event=on_event)
    started = wall_s()
    if sim:
        result = schedule_execute_sim(scenario, schedule["seed"], options, quiet, command)
    else:
        result = asyncio.run(scenario_run(scenario, schedule["seed"], options, speak, command))
    summary = summary_of(schedule, result, "simulation" if sim else "real")
    summary.wall_s = round(wall_s() - started, 3)
    return result, summary


def schedule_execute_sim(scenario: Any, seed: int, options: RunOptions, quiet: bool, command: str) -> RunResult:
    """The same `scenario_run` on a fresh simulated loop (cluster/sim/run.py, Python 3.12+); unless `quiet`,
    progress and events are printed with the virtual time."""
    reason = sim_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    from cluster.runner.cli import event_line
    from cluster.sim.run import scenario_run_sim
    return scenario_run_sim(scenario, seed, options, quiet, event_line, command).result


# -- worker processes ---------------------------------------------------------------------------------------

def worker_main() -> None:
    """`python -m cluster.explore.workers`: run jobs from stdin, one JSON line each, answer on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed must not mix with the answers
    done = 0
    for line in sys.stdin:
        job = json.loads(line)
        try:
            _result, summary = schedule_execute(job["schedule"], Path(job["runs_dir"]), bool(job["sim"]))
            answer = {"ok": True, "summary": summary.to_dict()}
        except Exception as error:  # the job failed, not the worker: say so and go on
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
        done += 1
        if done >= int(job.get("jobs_max", JOBS_PER_WORKER)):
            break
    sys.stderr.flush()
    out.flush()
    os._exit(0)  # never finalize what a simulated run's killed hosts left (cluster/sim/engine.py GRAVEYARD)


@dataclass
class Job:
    schedule: dict[str, Any]
    future: concurrent.futures.Future[RunSummary]
    deadline_s: float


class WorkerPool:
    """`workers` worker processes; `submit(schedule)` returns a Future of its RunSummary."""

    def __init__(self, workers: int, runs_dir: Path, sim: bool, env: dict[str, str] | None = None,
                 jobs_per_worker: int = JOBS_PER_WORKER) -> None:
        self.runs_dir = runs_dir
        self.sim = sim
        self.env = {**os.environ, **(env or {})}
        self.jobs_per_worker = jobs_per_worker
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max(workers, 1) * 4)
        self.threads = [threading.Thread(target=self._serve, name=f"explore worker {i}", daemon=True)
                        for i in range(max(workers, 1))]
        self.log_dir = runs_dir / "workers"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for thread in self.threads:
            thread.start()

    def submit(self, schedule: dict[str, Any], deadline_s: float) -> concurrent.futures.Future[RunSummary]:
        future: concurrent.futures.Future[RunSummary] = concurrent.futures.Future()
        self.jobs.put(Job(schedule, future, deadline_s))
        return future

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=60)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, index: int) -> subprocess.Popen[str]:
        with (self.log_dir / f"worker-{threading.current_thread().name.split()[-1]}-{index}.log").open("a") as log:
            return subprocess.Popen([sys.executable, "-m", "cluster.explore.workers"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, text=True, env=self.env, bufsize=1)

    def _serve(self) -> None:
        process: subprocess.Popen[str] | None = None
        served, spawned = 0, 0
        while True:
            job = self.jobs.get()
            if job is None:
                break
            if process is None or served >= self.jobs_per_worker or process.poll() is not None:
                if process is not None:
                    self._stop(process)
                spawned += 1
                process, served = self._spawn(spawned), 0
            served += 1
            answer = self._ask(process, job)
            if answer is None:
                self._stop(process, kill=True)
                process = None
                job.future.set_result(crash_summary(job.schedule, self.sim, "the worker died or outlived the "
                                                    f"deadline of {job.deadline_s:.0f} s"))
            elif answer.get("ok"):
                job.future.set_result(RunSummary.of(answer["summary"]))
            else:
                job.future.set_result(crash_summary(job.schedule, self.sim, str(answer.get("error"))))
            if served >= self.jobs_per_worker:
                self._stop(process) if process is not None else None
                process = None
        if process is not None:
            self._stop(process)

    def _ask(self, process: subprocess.Popen[str], job: Job) -> dict[str, Any] | None:
        assert process.stdin is not None and process.stdout is not None
        timer = threading.Timer(job.deadline_s, process.kill)
        timer.start()
        try:
            process.stdin.write(json.dumps({"schedule": job.schedule, "runs_dir": str(self.runs_dir),
                                            "sim": self.sim, "jobs_max": self.jobs_per_worker}) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        finally:
            timer.cancel()
        return json.loads(line) if line.strip() else None

    def _stop(self, process: subprocess.Popen[str], kill: bool = False) -> None:
        if kill:
            process.kill()
        else:
            try:
                assert process.stdin is not None
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def crash_summary(schedule: dict[str, Any], sim: bool, error: str) -> RunSummary:
    return RunSummary(schedule.get("name", "?"), int(schedule.get("seed", 0)), "simulation" if sim else "real",
                      "crash", {}, {}, [], [], "", 0.0, error, schedule)


def deadline_of(schedule: dict[str, Any]) -> float:
    """How long a worker may take to run `schedule` before it is killed: the plan's bound, the grace, a margin."""
    return timeout_s_of(schedule_normalize(schedule)) + GRACE_S + DEADLINE_MARGIN_S


def wall_s() -> float:
    return time.monotonic()  # not simulated: the explorer's own progress and budget


if __name__ == "__main__":
    worker_main()
