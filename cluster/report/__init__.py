"""The per-run report: `verdicts.json` for machines and a self-contained `report.html` for people.

`report_write(run_dir, history, results)` is called by the scenario runner after the checkers. The page
(`page.py`) shows the verdicts with the seed and replay command on top, and the swimlane (`swimlane.py`)
of replica states over time, drawn from the history by `timeline.py`, beside the ordered decisions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cluster.checkers.result import EXIT_CODES, CheckResult, results_exit_kind
from cluster.history import history_meta
from cluster.report.page import page_html
from cluster.report.timeline import Timeline, timeline_build

REPORT_FILE_NAME = "report.html"
VERDICTS_FILE_NAME = "verdicts.json"


def verdicts_document(history: list[dict[str, Any]], results: list[CheckResult],
                      exit_kind: str | None = None) -> dict[str, Any]:
    """What `verdicts.json` holds: the run's identity, how it should exit, and every result."""
    meta = history_meta(history)
    kind = exit_kind or results_exit_kind(results)
    return {"scenario": meta.get("scenario"), "seed": meta.get("seed"), "mode": meta.get("mode", "real"),
            "command": meta.get("command"),
            "default_priority": meta.get("default_priority"), "exit_kind": kind,
            "exit_code": EXIT_CODES.get(kind, EXIT_CODES["crash"]),
            "results": [r.to_dict() for r in results]}


def report_write(run_dir: Path, history: list[dict[str, Any]], results: list[CheckResult],
                 exit_kind: str | None = None) -> Path:
    """Write `verdicts.json` and `report.html` into `run_dir`; returns the HTML path.

    `exit_kind` defaults to what the results say; the runner passes `crash` when the tool itself failed.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    document = verdicts_document(history, results, exit_kind)
    (run_dir / VERDICTS_FILE_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    html_path = run_dir / REPORT_FILE_NAME
    html_path.write_text(page_html(history_meta(history), timeline_build(history), results,
                                   document["exit_kind"]), encoding="utf-8")
    return html_path


__all__ = ["REPORT_FILE_NAME", "VERDICTS_FILE_NAME", "Timeline", "report_write", "timeline_build",
           "verdicts_document"]
