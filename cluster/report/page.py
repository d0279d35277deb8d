"""The self-contained HTML report page: verdicts, seed and replay command on top, then the swimlane beside
the ordered list of decisions, then a legend. Inline CSS and inline SVG only; no script, no external file.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from cluster.checkers.result import CheckResult
from cluster.report.swimlane import FAULT_COLOUR, STATE_COLOURS, swimlane_svg
from cluster.report.timeline import Decision, Timeline

DETAILS_CHARS_MAX = 6000
VERDICT_WORDS = {True: ("valid", "ok"), False: ("INVALID", "bad"), None: ("unknown", "unknown")}
EXIT_WORDS = {"ok": "all checks passed", "correctness": "correctness violation", "liveness": "liveness failure",
              "unknown": "some checks could not decide", "crash": "the tool crashed"}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px;
       color: #111827; background: #ffffff; font-size: 15px; line-height: 1.45; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 22px 0 8px; }
.sub { color: #4b5563; margin-bottom: 12px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 14px; }
.ok { background: #dcfce7; color: #166534; } .bad { background: #fee2e2; color: #991b1b; }
.unknown { background: #fef9c3; color: #854d0e; }
pre.command { background: #111827; color: #f9fafb; padding: 10px 14px; border-radius: 6px; overflow-x: auto;
              font-size: 14px; }
table.verdicts { border-collapse: collapse; min-width: 640px; }
table.verdicts th, table.verdicts td { text-align: left; padding: 6px 12px; border-bottom: 1px solid #e5e7eb;
                                       vertical-align: top; }
details pre { max-height: 260px; overflow: auto; background: #f9fafb; padding: 8px; font-size: 12px; }
.timeline { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
.swimlane-box { flex: 0 1 auto; max-width: 1020px; overflow-x: auto; border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px; }
#swimlane text { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: 12px; fill: #111827; }
#swimlane .segment-label { fill: #ffffff; font-weight: 600; font-size: 11px; }
#swimlane .fault-label { fill: #7f1d1d; font-weight: 600; }
#swimlane .phase-label { fill: #374151; font-style: italic; }
#swimlane .transfer-label { font-size: 11px; font-weight: 600; paint-order: stroke; stroke: #ffffff;
                             stroke-width: 3px; stroke-linejoin: round; }
#swimlane .fault-label, #swimlane .phase-label { paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
#swimlane .tick { fill: #4b5563; }
aside.decisions { flex: 1 1 320px; max-width: 440px; max-height: 560px; overflow-y: auto;
                  border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 12px; }
aside.decisions h2 { margin-top: 4px; }
aside.decisions ol { padding-left: 0; list-style: none; margin: 0; }
aside.decisions li { padding: 6px 0; border-bottom: 1px dashed #e5e7eb; font-size: 13px; }
.time { font-variant-numeric: tabular-nums; color: #374151; font-weight: 600; margin-right: 6px; }
.rule { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; background: #eef2ff; color: #3730a3;
        padding: 0 5px; border-radius: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; font-size: 13px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px;
          margin-right: 5px; }
"""


def page_html(meta: dict[str, Any], timeline: Timeline, results: list[CheckResult], exit_kind: str) -> str:
    scenario = str(meta.get("scenario") or "unnamed run")
    css_class = "ok" if exit_kind == "ok" else ("unknown" if exit_kind == "unknown" else "bad")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>shardsim report: {escape(scenario)}</title><style>{CSS}</style></head><body>",
        f"<h1>shardsim run: {escape(scenario)} "
        f'<span class="badge {css_class}">{escape(EXIT_WORDS.get(exit_kind, exit_kind))}</span></h1>',
        f'<div class="sub">seed <b>{escape(str(meta.get("seed", "?")))}</b> · '
        f'{"simulated (one process, virtual time)" if meta.get("mode") == "simulation" else "real processes"}'
        ' · default snapshot priority '
        f'<b>{escape(str(meta.get("default_priority", "?")))}</b> · {len(timeline.lanes)} replicas · '
        f"{timeline.time_end_s:.1f} s recorded</div>",
        "<div>Replay with:</div>",
        f'<pre class="command"><code>{escape(str(meta.get("command") or "(no replay command recorded)"))}'
        "</code></pre>",
        "<h2>Verdicts</h2>", verdicts_table(results),
        "<h2>Replica states over time</h2>",
        '<div class="timeline"><div class="swimlane-box">', swimlane_svg(timeline), legend_html(), "</div>",
        decisions_html(timeline.decisions), "</div>", "</body></html>"])


def verdicts_table(results: list[CheckResult]) -> str:
    rows = ['<table class="verdicts"><thead><tr><th>checker</th><th>verdict</th><th>summary</th></tr></thead>'
            "<tbody>"]
    for result in results:
        word, css_class = VERDICT_WORDS[result.valid]
        details = json.dumps(result.to_dict()["details"], indent=1, sort_keys=True)
        if len(details) > DETAILS_CHARS_MAX:
            details = details[:DETAILS_CHARS_MAX] + "\n… (truncated; verdicts.json has everything)"
        rows.append(f'<tr class="verdict verdict-{css_class}"><td>{escape(result.name)}</td>'
                    f'<td><span class="badge {css_class}">{word}</span></td><td>{escape(result.summary)}'
                    f"<details><summary>details</summary><pre>{escape(details)}</pre></details></td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def decisions_html(decisions: list[Decision]) -> str:
    items = []
    for decision in decisions:
        rule = f' <span class="rule">{escape(decision.rule)}</span>' if decision.rule else ""
        items.append(f'<li><span class="time">{decision.time_s:.2f} s</span><b>{escape(decision.kind)}</b> '
                     f"{escape(decision.where)}{rule}<br>{escape(decision.explanation)}</li>")
    body = "".join(items) or "<li>No decisions recorded.</li>"
    return f'<aside class="decisions"><h2>Decisions, in order</h2><ol>{body}</ol></aside>'


def legend_html() -> str:
    swatches = [f'<span><span class="swatch" style="background:{colour}"></span>{escape(state)}</span>'
                for state, colour in STATE_COLOURS.items()]
    swatches += [
        f'<span><span class="swatch" style="background:{FAULT_COLOUR};opacity:0.25;border:1px dashed '
        f'{FAULT_COLOUR}"></span>fault active</span>',
        '<span>━▶ transfer finished</span>', f'<span style="color:{FAULT_COLOUR}">╍▶ transfer aborted/open'
        "</span>", "<span>┊ phase marker</span>", "<span>◆ final observed state</span>"]
    return f'<div class="legend">{"".join(swatches)}</div>'
