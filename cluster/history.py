"""The run history: the record shapes, a writer for the scenario runner and readers for the checkers.

A run's history is the JSON-lines file `history.jsonl`, one record per line, in the order they were recorded.
It is the interface between the scenario runner (which writes it through `HistoryWriter`), the checkers and
the priority oracle (pure functions over `list[dict]`) and the report. The shapes (docs/checkers.md has the
full reference):

- `{"type": "meta", "time": 0.0, "scenario", "seed", "command", "default_priority", "collections": {name:
  {"shard_number", "replication_factor", "write_consistency_factor"}}, "peers": {"1": "n1"}}`
- `{"type": "phase", "time", "name"}` with name setup | workload | heal | grace | final | check.
- client operations, Jepsen style: `{"type": "invoke"|"ok"|"fail"|"info", "time", "process", "op_id", "f",
  "value", "error"}`; an invoke is followed by exactly one ok (done), fail (definitely not applied) or info
  (unknown). `f` is upsert | delete | read | snapshot_create | snapshot_recover.
- `{"type": "event", "time", "event": {"ts", "source", "kind", ...}}`: what the event bus carried.
- `{"type": "final", "time", "f": "replicas"|"read_all"|"snapshot_files", "value"}`: observations after heal.

Times are seconds since the start of the run (float). The readers at the bottom (`history_meta`,
`history_ops`, `history_finals`, `history_events`) are what checkers use, so the pairing of invoke and
completion lives in one place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from node import clock, jsonwire
from node.protocol import PRIORITY_DEFAULT, PRIORITY_DEFAULT_CHOICES

PHASE_NAMES = ("setup", "workload", "heal", "grace", "final", "check")
OP_COMPLETION_TYPES = ("ok", "fail", "info")
OP_FUNCTIONS = ("upsert", "delete", "read", "snapshot_create", "snapshot_recover")
FINAL_FUNCTIONS = ("replicas", "replica_differences", "read_all", "snapshot_files")

CompletionType = Literal["ok", "fail", "info"]


class HistoryWriter:
    """Appends history records to `history.jsonl`, one flushed line each, with run-relative times.

    Use as a context manager (`with HistoryWriter(path) as history:`); the clock starts when it opens. Every
    helper returns the record it wrote, so callers can keep it.
    """

    def __init__(self, path: Path, clock_start_s: float | None = None) -> None:
        self.path = Path(path)
        self.clock_start_s = clock.monotonic() if clock_start_s is None else clock_start_s
        self._file: IO[str] | None = None
        self._op_id_next = 0

    def __enter__(self) -> HistoryWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def time_now_s(self) -> float:
        return round(clock.monotonic() - self.clock_start_s, 6)

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record as it is (it must already have `type` and `time`)."""
        assert self._file is not None, "HistoryWriter used outside its `with` block"
        assert "type" in record and "time" in record, record
        self._file.write(jsonwire.std_dumps(record, default=str) + "\n")  # json.dumps's bytes, faster
        self._file.flush()
        return record

    def meta(self, scenario: str, seed: int, command: str, default_priority: str,
             collections: dict[str, dict[str, int]], peers: dict[str, str], mode: str = "real") -> dict[str, Any]:
        """The run's identity; `mode` is `real` (processes) or `simulation` (`--sim`)."""
        assert default_priority in PRIORITY_DEFAULT_CHOICES, default_priority
        return self.record({"type": "meta", "time": 0.0, "scenario": scenario, "seed": seed,
                            "command": command, "mode": mode, "default_priority": default_priority,
                            "collections": collections, "peers": {str(k): v for k, v in peers.items()}})

    def phase(self, name: str) -> dict[str, Any]:
        assert name in PHASE_NAMES, name
        return self.record({"type": "phase", "time": self.time_now_s(), "name": name})

    def op_id_new(self) -> int:
        self._op_id_next += 1
        return self._op_id_next

    def op_invoke(self, process: int, f: str, value: Any, op_id: int | None = None) -> dict[str, Any]:
        """Record an invocation; returns the record, whose `op_id` the completion must repeat."""
        assert f in OP_FUNCTIONS, f
        return self.record({"type": "invoke", "time": self.time_now_s(), "process": process,
                            "op_id": self.op_id_new() if op_id is None else op_id, "f": f, "value": value,
                            "error": None})

    def op_complete(self, invoke: dict[str, Any], completion: CompletionType, value: Any = None,
                    error: str | None = None) -> dict[str, Any]:
        """Record the completion of `invoke`: ok, fail (definitely not applied) or info (unknown)."""
        assert completion in OP_COMPLETION_TYPES, completion
        return self.record({"type": completion, "time": self.time_now_s(), "process": invoke["process"],
                            "op_id": invoke["op_id"], "f": invoke["f"],
                            "value": invoke["value"] if value is None else value, "error": error})

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.record({"type": "event", "time": self.time_now_s(), "event": event})

    def final(self, f: str, value: Any) -> dict[str, Any]:
        assert f in FINAL_FUNCTIONS, f
        return self.record({"type": "final", "time": self.time_now_s(), "f": f, "value": value})


def history_load(path: Path) -> list[dict[str, Any]]:
    """Read a history file; a torn last line (the writer was killed mid-write) is dropped."""
    records: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(jsonwire.std_loads(line))  # json.loads's value, faster
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON history record") from None
    return records


# ---------------------------------------------------------------------------------------------------------
# Readers used by the checkers, the oracle and the report.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One client operation: its invocation joined with its completion.

    `completion` is ok | fail | info, or None when the history ends before the completion (treated like
    info). `time_complete_s` is +inf for info and missing completions: the effect may land at any time.
    """

    op_id: int
    process: int
    f: str
    value: Any
    completion: str | None
    result: Any
    error: str | None
    time_invoke_s: float
    time_complete_s: float

    @property
    def may_have_happened(self) -> bool:
        return self.completion != "fail"


def history_meta(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The meta record (an empty dict when there is none)."""
    return next((r for r in history if r.get("type") == "meta"), {})


def history_ops(history: list[dict[str, Any]]) -> list[Op]:
    """Every client operation, invocation joined with completion, in invocation order."""
    invokes: dict[int, dict[str, Any]] = {}
    completions: dict[int, dict[str, Any]] = {}
    for record in history:
        kind = record.get("type")
        if kind == "invoke":
            invokes[record["op_id"]] = record
        elif kind in OP_COMPLETION_TYPES and record.get("op_id") in invokes:
            completions.setdefault(record["op_id"], record)
    ops = [_op_join(invoke, completions.get(op_id)) for op_id, invoke in invokes.items()]
    return sorted(ops, key=lambda op: (op.time_invoke_s, op.op_id))


def _op_join(invoke: dict[str, Any], done: dict[str, Any] | None) -> Op:
    completion = None if done is None else done["type"]
    certain = completion in ("ok", "fail")
    return Op(op_id=invoke["op_id"], process=invoke.get("process", 0), f=invoke["f"],
              value=invoke.get("value"), completion=completion,
              result=None if done is None else done.get("value"),
              error=None if done is None else done.get("error"),
              time_invoke_s=float(invoke["time"]),
              time_complete_s=float(done["time"]) if certain and done is not None else math.inf)


def history_finals(history: list[dict[str, Any]], f: str) -> list[dict[str, Any]]:
    """The final observations of one kind (`replicas`, `read_all`, `snapshot_files`), in order."""
    return [r for r in history if r.get("type") == "final" and r.get("f") == f]


def history_events(history: list[dict[str, Any]], *kinds: str) -> list[tuple[float, dict[str, Any]]]:
    """`(time, event)` of every bus event, or only of the given kinds (a kind ending in `.` is a prefix)."""
    found = []
    for record in history:
        if record.get("type") != "event":
            continue
        event = record.get("event") or {}
        kind = str(event.get("kind", ""))
        if not kinds or any(kind == k or (k.endswith(".") and kind.startswith(k)) for k in kinds):
            found.append((float(record.get("time", 0.0)), event))
    return found


def history_time_end_s(history: list[dict[str, Any]]) -> float:
    """The time of the last record (0.0 for an empty history)."""
    return max((float(r.get("time", 0.0)) for r in history), default=0.0)


def priority_effective(priority: str | None, meta: dict[str, Any]) -> str:
    """A recover op's priority, with null meaning the run's default (meta `default_priority`)."""
    return priority or str(meta.get("default_priority") or PRIORITY_DEFAULT)
