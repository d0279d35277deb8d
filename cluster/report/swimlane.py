"""The swimlane: an inline SVG of replica states over time, drawn in Python from a `Timeline`.

One lane per (collection, shard, peer), a coloured rectangle per state held (`class="segment state-<State>"`,
with a `<title>` tooltip), translucent fault bands labelled above the lanes, transfer arrows between the two
peers' lanes labelled with method and bytes, dashed phase markers and a time axis in seconds. The SVG root
has `id="swimlane"`. Static SVG: nothing needs JavaScript to be seen.
"""

from __future__ import annotations

from html import escape

from cluster.report.timeline import Timeline, TransferArrow
from node.protocol import ReplicaState

STATE_COLOURS = {
    ReplicaState.ACTIVE.value: "#2f9e5b", ReplicaState.DEAD.value: "#d64541",
    ReplicaState.PARTIAL.value: "#f2a93b", ReplicaState.INITIALIZING.value: "#8db9e3",
    ReplicaState.RECOVERY.value: "#3c7dd9",
    ReplicaState.MANUAL_RECOVERY.value: "#e07b39", ReplicaState.LISTENER.value: "#9a7bd3",
}
STATE_COLOUR_OTHER = "#9aa0a6"
FAULT_COLOUR = "#c0392b"
WIDTH_PX, LABEL_PX, RIGHT_PX = 1000, 170, 20
LANE_PX, LANE_GAP_PX, TOP_ROW_PX, AXIS_PX, PHASE_ROW_PX = 26, 8, 18, 34, 15
PHASE_LABEL_GAP_PX = 52
TICK_STEPS_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


def bytes_human(count: int | None) -> str:
    if count is None:
        return "? B"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


class SwimlaneDrawing:
    """Coordinates for one timeline; `svg()` returns the whole drawing as text."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.fault_rows = min(max(len(timeline.faults), 1), 4)
        self.top_px = 2 * PHASE_ROW_PX + 6 + TOP_ROW_PX * self.fault_rows
        self.lanes_px = len(timeline.lanes) * (LANE_PX + LANE_GAP_PX)
        self.height_px = self.top_px + self.lanes_px + AXIS_PX
        self.lane_index = {lane: i for i, lane in enumerate(timeline.lanes)}

    def x(self, time_s: float) -> float:
        span_px = WIDTH_PX - LABEL_PX - RIGHT_PX
        return round(LABEL_PX + span_px * min(max(time_s, 0.0), self.timeline.time_end_s)
                     / self.timeline.time_end_s, 2)

    def lane_y(self, lane: tuple[str, int, int]) -> float:
        return self.top_px + self.lane_index[lane] * (LANE_PX + LANE_GAP_PX)

    def svg(self) -> str:
        parts = [f'<svg id="swimlane" xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" '
                 f'height="{self.height_px}" viewBox="0 0 {WIDTH_PX} {self.height_px}" role="img" '
                 'aria-label="Replica states over time">', self.defs(), *self.lanes(), *self.faults(),
                 *self.segments(), *self.finals(), *self.phases(), *self.transfers(), *self.axis(), "</svg>"]
        return "\n".join(parts)

    def defs(self) -> str:
        return ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f2937"/>'
                '</marker><marker id="arrow-aborted" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{FAULT_COLOUR}"/></marker>'
                '</defs>')

    def lanes(self) -> list[str]:
        parts = []
        for lane in self.timeline.lanes:
            collection, shard, peer = lane
            y = self.lane_y(lane)
            name = self.timeline.peer_names.get(peer, f"peer {peer}")
            parts.append(f'<rect class="lane" x="{LABEL_PX}" y="{y}" width="{WIDTH_PX - LABEL_PX - RIGHT_PX}" '
                         f'height="{LANE_PX}" fill="#f3f4f6"/>')
            parts.append(f'<text class="lane-label" x="{LABEL_PX - 8}" y="{y + LANE_PX / 2 + 4}" '
                         f'text-anchor="end">{escape(collection)}/{shard} · {escape(name)} '
                         f'<tspan fill="#6b7280">({peer})</tspan></text>')
        return parts

    def segments(self) -> list[str]:
        parts = []
        for segment in self.timeline.segments:
            x0, x1, y = self.x(segment.start_s), self.x(segment.end_s), self.lane_y(segment.lane)
            width = max(x1 - x0, 1.5)
            colour = STATE_COLOURS.get(segment.state, STATE_COLOUR_OTHER)
            why = " · ".join(p for p in (segment.rule, segment.reason) if p)
            title = (f"{segment.lane[0]}/{segment.lane[1]} on peer {segment.lane[2]}: {segment.state} from "
                     f"{segment.start_s:.2f} s to {segment.end_s:.2f} s" + (f" ({why})" if why else ""))
            parts.append(f'<g class="segment state-{escape(segment.state)}"><title>{escape(title)}</title>'
                         f'<rect x="{x0}" y="{y + 2}" width="{round(width, 2)}" height="{LANE_PX - 4}" rx="3" '
                         f'fill="{colour}"/>')
            if width > 9 * len(segment.state):
                parts.append(f'<text class="segment-label" x="{x0 + 6}" y="{y + LANE_PX / 2 + 4}">'
                             f'{escape(segment.state)}</text>')
            parts.append("</g>")
        return parts

    def finals(self) -> list[str]:
        """A small diamond at the right end of each lane: the state observed at the end."""
        parts = []
        x = WIDTH_PX - RIGHT_PX + 8
        for lane, state in self.timeline.finals.items():
            y = self.lane_y(lane) + LANE_PX / 2
            colour = STATE_COLOURS.get(state, STATE_COLOUR_OTHER)
            parts.append(f'<path class="final-state" d="M{x},{y - 6} L{x + 6},{y} L{x},{y + 6} L{x - 6},{y} z" '
                         f'fill="{colour}" stroke="#111827" stroke-width="0.8"><title>final observation: '
                         f'{escape(state)}</title></path>')
        return parts

    def faults(self) -> list[str]:
        parts = []
        bottom = self.top_px + self.lanes_px
        for index, band in enumerate(self.timeline.faults):
            x0, x1 = self.x(band.start_s), self.x(band.end_s)
            label_y = 2 * PHASE_ROW_PX + 6 + TOP_ROW_PX * (index % self.fault_rows) + 12
            until = f"{band.end_s:.2f} s" if band.healed else "the end (never healed)"
            title = f"fault {band.label}: {band.start_s:.2f} s to {until}"
            parts.append(f'<g class="fault"><title>{escape(title)}</title><rect x="{x0}" y="{label_y - 12}" '
                         f'width="{max(x1 - x0, 2)}" height="{bottom - label_y + 12}" fill="{FAULT_COLOUR}" '
                         f'fill-opacity="0.10" stroke="{FAULT_COLOUR}" stroke-opacity="0.45" '
                         f'stroke-dasharray="4 3"/><text class="fault-label" x="{x0 + 4}" y="{label_y}">'
                         f'⚡ {escape(band.label)}</text></g>')
        return parts

    def phases(self) -> list[str]:
        parts = []
        bottom = self.top_px + self.lanes_px
        row_free_px = [-1e9, -1e9]  # where each label row is free again, so close labels do not collide
        for name, time_s in self.timeline.phases:
            x = self.x(time_s)
            row = 0 if x >= row_free_px[0] else (1 if x >= row_free_px[1] else 0)
            row_free_px[row] = x + PHASE_LABEL_GAP_PX
            label_y = 12 + row * PHASE_ROW_PX
            parts.append(f'<g class="phase"><title>phase {escape(name)} at {time_s:.2f} s</title>'
                         f'<line x1="{x}" y1="{label_y - 10}" x2="{x}" y2="{bottom}" stroke="#4b5563" '
                         f'stroke-width="1" stroke-dasharray="2 3"/>{self.label_fitted(name, x, label_y)}</g>')
        return parts

    def label_fitted(self, text: str, x: float, y: float) -> str:
        """A phase label right of its line, or left of it when it would run off the drawing."""
        if x + 3 + 7 * len(text) <= WIDTH_PX:
            return f'<text class="phase-label" x="{x + 3}" y="{y}">{escape(text)}</text>'
        return f'<text class="phase-label" x="{x - 3}" y="{y}" text-anchor="end">{escape(text)}</text>'

    def transfers(self) -> list[str]:
        return [self.transfer(arrow) for arrow in self.timeline.transfers]

    def transfer(self, arrow: TransferArrow) -> str:
        lane_from = (arrow.collection, arrow.shard, arrow.peer_from)
        lane_to = (arrow.collection, arrow.shard, arrow.peer_to)
        x0, x1 = self.x(arrow.start_s), self.x(arrow.end_s)
        y0, y1 = self.lane_y(lane_from) + LANE_PX / 2, self.lane_y(lane_to) + LANE_PX / 2
        aborted = arrow.outcome != "finished"
        stroke = FAULT_COLOUR if aborted else "#1f2937"
        label = f"{arrow.method} {bytes_human(arrow.bytes_sent)}" + ("" if not aborted else f" ({arrow.outcome})")
        title = (f"transfer {arrow.collection}/{arrow.shard} peer {arrow.peer_from} → {arrow.peer_to}, "
                 f"{arrow.method}, {arrow.start_s:.2f}–{arrow.end_s:.2f} s, {bytes_human(arrow.bytes_sent)}, "
                 f"{arrow.outcome}" + (f": {arrow.reason}" if arrow.reason else ""))
        marker = "arrow-aborted" if aborted else "arrow"
        dash = ' stroke-dasharray="5 3"' if aborted else ""
        mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
        return (f'<g class="transfer transfer-{arrow.outcome}"><title>{escape(title)}</title>'
                f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{stroke}" stroke-width="2"{dash} '
                f'marker-end="url(#{marker})"/><circle cx="{x0}" cy="{y0}" r="3" fill="{stroke}"/>'
                f'<text class="transfer-label" x="{mid_x + 5}" y="{mid_y - 4}" fill="{stroke}">'
                f'{escape(label)}</text></g>')

    def axis(self) -> list[str]:
        y = self.top_px + self.lanes_px + 4
        end_s = self.timeline.time_end_s
        step_s = next((s for s in TICK_STEPS_S if end_s / s <= 12), TICK_STEPS_S[-1])
        parts = [f'<line x1="{LABEL_PX}" y1="{y}" x2="{WIDTH_PX - RIGHT_PX}" y2="{y}" stroke="#6b7280"/>']
        for index in range(int(end_s / step_s) + 1):
            tick_s = index * step_s
            x = self.x(tick_s)
            text = f"{tick_s:g} s"
            parts.append(f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + 5}" stroke="#6b7280"/>'
                         f'<text class="tick" x="{x}" y="{y + 18}" text-anchor="middle">{text}</text>')
        return parts


def swimlane_svg(timeline: Timeline) -> str:
    if not timeline.lanes:
        return ('<svg id="swimlane" xmlns="http://www.w3.org/2000/svg" width="600" height="40">'
                '<text x="10" y="25">No replica state events in this history.</text></svg>')
    return SwimlaneDrawing(timeline).svg()
