"""The coverage map: which cells fault x phase x kind x priority a run reached, judged from its history.

A cell is reached only when the history shows the fault in force in that phase: a `fault.applied` event
whose time falls in the phase of a transfer it concerns, the phase read from the transfer's own events
(`transfer.started`, `transfer.phase` with `queue_installed`, `streaming`, `restored`, `queued`, `partial`,
`queue_replayed`, `transfer.finished`). What the schedule planned does not count. Phases:
- `before_stream`: started, the update queue installed, nothing streamed yet;
- `mid_stream`: part of the snapshot streamed (up to the stream's end, before the restore);
- `restored`: the target restored the snapshot, not yet Partial;
- `partial`: the target is Partial and the source had queued updates for it in this attempt;
- `finished`: within `FINISH_WINDOW_S` after the transfer finished;
- `between`: no transfer open, after at least one ended (attributed to the last one).
Kind is `move` or `replicate` (a re-sync by automatic recovery is a replicate). Priority is the snapshot
priority whose rule caused the transfer: `replica` (the recovered replica re-synced from the others),
`snapshot` (the others re-synced from it), `none` for a user's transfer or a re-sync after a fault;
`no_sync` never causes a transfer, so its cells are unreachable, as are moves with a priority.

A fault concerns a transfer when it hits its source or target: a kill or pause of either (or of another
node: `kill_other`), a toxic or cut link touching either, a partition that separates them, an isolation of
either; a coordinator restart or a broker outage concerns every transfer. `CoverageMap` adds runs up and is
written as `coverage.json` and a self-contained page (`coverage_page`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.explore.schedule import FAULTS, PHASES

KINDS = ("move", "replicate")
PRIORITY_CAUSES = ("none", "replica", "snapshot", "no_sync")
FINISH_WINDOW_S = 1.0
UNREACHABLE_WHY = {"move": "a snapshot recovery re-syncs replicas by replicate transfers, never by a move.",
                   "no_sync": "a recovery with priority no_sync causes no transfer."}
Cell = tuple[str, str, str, str]  # fault, phase, kind, priority

NEMESIS_FAULTS = {"latency": "latency", "bandwidth": "bandwidth", "link_down": "link_down", "timeout": "timeout",
                  "reset": "reset_peer", "cut_after": "limit_data", "slice": "slicer", "partition": "partition",
                  "isolate": "isolation", "coordinator_restart": "coordinator_restart",
                  "broker_outage": "broker_outage"}
PHASE_OF_EVENT = {"queue_installed": "before_stream", "streamed": "mid_stream", "restored": "restored",
                  "queued": "restored", "partial": "partial", "queue_replayed": "partial",
                  "attempt_failed": "retrying"}


def cell_reachable(cell: Cell) -> bool:
    _fault, _phase, kind, priority = cell
    if priority == "no_sync":
        return False
    return kind == "replicate" or priority == "none"


def cells_all() -> list[Cell]:
    return [(f, p, k, c) for k in KINDS for c in PRIORITY_CAUSES for f in FAULTS for p in PHASES]


def cells_reachable() -> list[Cell]:
    return [cell for cell in cells_all() if cell_reachable(cell)]


def cell_key(cell: Cell) -> str:
    return "|".join(cell)


@dataclass
class Transfer:
    collection: str
    shard: int
    source: int
    target: int
    kind: str
    priority: str
    phase: str = "before_stream"
    queued: int = 0
    ended_ts: float | None = None
    finished: bool = False


def priority_cause(event: dict[str, Any], last_rule: dict[tuple[str, int, int], str]) -> str:
    cause = str(event.get("cause") or "user")
    if cause.startswith("priority=replica"):
        return "replica"
    if cause == "user":
        return "none"
    rule = last_rule.get((event.get("collection"), event.get("shard"), event.get("to")), "")  # type: ignore[arg-type]
    if rule.startswith("priority.snapshot"):
        return "snapshot"
    if rule.startswith("priority.replica"):
        return "replica"
    return "none"


def transfer_follow(transfer: Transfer, event: dict[str, Any]) -> None:
    phase = event.get("phase")
    if phase == "queue_installed":
        transfer.queued = 0
    if phase == "streaming":
        total, done = event.get("bytes_total") or 0, event.get("bytes") or 0
        transfer.phase = "mid_stream" if done > 0 and (not total or done < total) else transfer.phase
        if total and done >= total:
            transfer.phase = "mid_stream"
    elif phase in PHASE_OF_EVENT:
        transfer.phase = PHASE_OF_EVENT[phase]
    transfer.queued = max(transfer.queued, int(event.get("queued") or 0))


def fault_concerns(event: dict[str, Any], transfer: Transfer, names: dict[int, str]) -> str | None:
    """The explorer's fault kind of a `fault.applied` event for this transfer, or None if it does not touch it."""
    fault, target = str(event.get("fault")), str(event.get("target") or "")
    source_name, target_name = names.get(transfer.source, "?"), names.get(transfer.target, "?")
    ends = {source_name, target_name}
    if fault in ("node_kill", "node_restart", "node_pause"):
        action = "pause" if fault == "node_pause" else "kill"
        role = "source" if target == source_name else "target" if target == target_name else "other"
        process_kind = f"{action}_{role}"
        return process_kind if process_kind in FAULTS else None
    found = NEMESIS_FAULTS.get(fault)
    if found is None:
        return None
    kind = found
    if kind in ("coordinator_restart", "broker_outage"):
        return kind
    if kind == "isolation":
        return kind if target in ends else None
    if kind == "partition":
        groups = (event.get("params") or {}).get("groups") or []
        sides = [next((i for i, g in enumerate(groups) if name in g), None) for name in (source_name, target_name)]
        return kind if None not in sides and sides[0] != sides[1] else None
    a, _, b = target.partition("->")
    return kind if {a, b} & ends else None


def cells_reached(history: list[dict[str, Any]]) -> set[Cell]:
    """The cells this run's history shows reached (see the module docstring)."""
    meta = next((r for r in history if r.get("type") == "meta"), {})
    names = {int(k): v for k, v in (meta.get("peers") or {}).items()}
    events = sorted(((float(r["event"].get("ts") or 0.0), index, r["event"]) for index, r in enumerate(history)
                     if r.get("type") == "event" and isinstance(r.get("event"), dict)), key=lambda e: (e[0], e[1]))
    open_: dict[tuple[str, int, int, int], Transfer] = {}
    ended: list[Transfer] = []
    last_rule: dict[tuple[str, int, int], str] = {}
    reached: set[Cell] = set()
    for ts, _index, event in events:
        kind = event.get("kind")
        key = (event.get("collection"), event.get("shard"), event.get("from"), event.get("to"))
        if kind == "replica.state":
            last_rule[(event.get("collection"), event.get("shard"), event.get("peer"))] = str(event.get("rule") or "")  # type: ignore[index]
        elif kind == "transfer.started":
            open_[key] = Transfer(key[0], key[1], key[2], key[3], "replicate" if event.get("sync") else "move",  # type: ignore[arg-type, index]
                                  priority_cause(event, last_rule))
        elif kind == "transfer.phase" and key in open_:
            transfer_follow(open_[key], event)  # type: ignore[index]
        elif kind in ("transfer.finished", "transfer.aborted") and key in open_:
            transfer = open_.pop(key)  # type: ignore[arg-type]
            transfer.ended_ts, transfer.finished = ts, kind == "transfer.finished"
            ended.append(transfer)
        elif kind == "fault.applied":
            reached |= fault_cells(event, ts, list(open_.values()), ended, names)
    return reached


def fault_cells(event: dict[str, Any], ts: float, open_: list[Transfer], ended: list[Transfer],
                names: dict[int, str]) -> set[Cell]:
    cells: set[Cell] = set()
    for transfer in open_:
        fault = fault_concerns(event, transfer, names)
        phase = transfer.phase
        if fault is None or phase == "retrying" or phase == "partial" and transfer.queued <= 0:
            continue
        cells.add((fault, phase, transfer.kind, transfer.priority))
    for transfer in ended:
        if transfer.finished and transfer.ended_ts is not None and 0 <= ts - transfer.ended_ts <= FINISH_WINDOW_S:
            fault = fault_concerns(event, transfer, names)
            if fault is not None:
                cells.add((fault, "finished", transfer.kind, transfer.priority))
    if not open_ and ended and not cells:
        last = ended[-1]
        fault = fault_concerns(event, last, names)
        if fault is not None:
            cells.add((fault, "between", last.kind, last.priority))
    return cells


# -- the map over many runs ---------------------------------------------------------------------------------

@dataclass
class CellCount:
    runs: int = 0
    violations: int = 0
    seeds: list[int] = field(default_factory=list)


@dataclass
class CoverageMap:
    cells: dict[Cell, CellCount] = field(default_factory=dict)
    runs: int = 0
    violating_runs: int = 0
    planned: dict[Cell, int] = field(default_factory=dict)

    def add(self, reached: Iterable[Cell | str], violated: bool, seed: int) -> None:
        """One run: the cells it reached (tuples or their `cell_key` text), whether it violated something."""
        self.runs += 1
        self.violating_runs += violated
        for item in reached:
            cell: Cell = tuple(item.split("|")) if isinstance(item, str) else item  # type: ignore[assignment]
            count = self.cells.setdefault(cell, CellCount())
            count.runs += 1
            count.violations += violated
            if len(count.seeds) < 5:
                count.seeds.append(seed)

    def planned_add(self, targets: Iterable[Cell]) -> None:
        """A schedule was built to reach these cells (reached or not, the run says)."""
        for cell in targets:
            self.planned[cell] = self.planned.get(cell, 0) + 1

    def effort_of(self, cell: Cell) -> float:
        """Runs that reached the cell, plus a quarter of the times it was targeted in vain."""
        runs = self.runs_of(cell)
        return runs + max(0, self.planned.get(cell, 0) - runs) / 4

    def runs_of(self, cell: Cell) -> int:
        count = self.cells.get(cell)
        return count.runs if count else 0

    def covered(self, times: int) -> bool:
        return all(self.runs_of(cell) >= times for cell in cells_reachable())

    def reached_count(self) -> int:
        return sum(1 for cell in cells_reachable() if self.runs_of(cell) > 0)

    def to_dict(self) -> dict[str, Any]:
        reachable = cells_reachable()
        return {"format": 1, "runs": self.runs, "violating_runs": self.violating_runs,
                "cells_reachable": len(reachable), "cells_reached": self.reached_count(),
                "cells": {cell_key(cell): {"runs": c.runs, "violations": c.violations, "seeds": c.seeds,
                                           "reachable": cell_reachable(cell)}
                          for cell, c in sorted(self.cells.items())}}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CoverageMap:
        result = CoverageMap(runs=int(data.get("runs", 0)), violating_runs=int(data.get("violating_runs", 0)))
        for key, value in (data.get("cells") or {}).items():
            cell = tuple(key.split("|"))
            result.cells[cell] = CellCount(int(value["runs"]), int(value["violations"]), list(value.get("seeds", [])))  # type: ignore[index]
        return result

    def write(self, folder: Path, title: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        data_path, page_path = folder / "coverage.json", folder / "coverage.html"
        data_path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        page_path.write_text(coverage_page(self, title))
        return data_path, page_path


PAGE_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 24px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: center; min-width: 64px; }
th { background: #f4f4f4; font-weight: 600; }
td.fault { text-align: left; font-family: monospace; }
td.never { background: #eee; color: #888; }
td.held { background: #cfeccf; }
td.violated { background: #f6b3b3; font-weight: 600; }
td.unreachable { background: repeating-linear-gradient(45deg, #fafafa, #fafafa 4px, #e6e6e6 4px, #e6e6e6 8px);
                 color: #aaa; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 8px; border: 1px solid #ccc; }
"""


def coverage_page(coverage: CoverageMap, title: str) -> str:
    """A page with one matrix (fault x phase) per kind x priority; cells say runs and violations."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{PAGE_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>{coverage.runs} runs, {coverage.violating_runs} violating; {coverage.reached_count()} of "
             f"{len(cells_reachable())} reachable cells reached. A cell counts a run only when the run's events "
             "show the fault in force in that phase of a transfer it touches.</p>",
             "<p class='legend'><span class='held' style='background:#cfeccf'>reached, never violated</span>"
             "<span style='background:#f6b3b3'>reached and violated (violations/runs)</span>"
             "<span style='background:#eee'>never reached</span><span>hatched: unreachable</span></p>"]
    for kind in KINDS:
        for priority in PRIORITY_CAUSES:
            if not cell_reachable((FAULTS[0], PHASES[0], kind, priority)):
                parts.append(f"<h2 id='{kind}-{priority}'>{kind}, priority {priority}</h2><p class='unreachable'>"
                             f"Unreachable: {UNREACHABLE_WHY[priority if kind == 'replicate' else 'move']}</p>")
                continue
            parts.append(f"<h2 id='{kind}-{priority}'>{kind}, priority {priority}</h2><table><tr><th>fault</th>")
            parts += [f"<th>{phase}</th>" for phase in PHASES]
            parts.append("</tr>")
            for fault in FAULTS:
                parts.append(f"<tr><td class='fault'>{fault}</td>")
                for phase in PHASES:
                    parts.append(cell_html(coverage, (fault, phase, kind, priority)))
                parts.append("</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def cell_html(coverage: CoverageMap, cell: Cell) -> str:
    count = coverage.cells.get(cell)
    label = " / ".join(cell)
    if not cell_reachable(cell):
        return f"<td class='unreachable' title='{label}: unreachable'>-</td>"
    if count is None or count.runs == 0:
        return f"<td class='never' title='{label}: never reached'>0</td>"
    seeds = ", ".join(map(str, count.seeds))
    if count.violations:
        return (f"<td class='violated' title='{label}: {count.violations} of {count.runs} runs violated; seeds "
                f"{seeds}'>{count.violations}/{count.runs}</td>")
    return f"<td class='held' title='{label}: {count.runs} runs, none violated; seeds {seeds}'>{count.runs}</td>"
