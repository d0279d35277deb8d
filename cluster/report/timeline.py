"""What the report draws, read out of a history: lanes, state segments, fault bands, transfers, phases.

Pure and separate from the drawing (`swimlane.py`) so the shapes can be tested and reused (a terminal view,
the teaching mode). One lane per replica (collection, shard, peer); a segment is one state held from one
`replica.state` event to the next; a replica removed (`to` null or `Removed`) ends its lane's last segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cluster.history import history_events, history_finals, history_meta, history_time_end_s

LaneKey = tuple[str, int, int]
REMOVED_STATES = (None, "", "Removed")


@dataclass(frozen=True)
class Segment:
    lane: LaneKey
    state: str
    start_s: float
    end_s: float
    reason: str = ""
    rule: str = ""


@dataclass(frozen=True)
class FaultBand:
    fault_id: str
    label: str
    start_s: float
    end_s: float
    healed: bool


@dataclass(frozen=True)
class TransferArrow:
    collection: str
    shard: int
    peer_from: int
    peer_to: int
    method: str
    start_s: float
    end_s: float
    outcome: str  # finished | aborted | open
    bytes_sent: int | None
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    time_s: float
    kind: str
    where: str
    rule: str
    explanation: str


@dataclass
class Timeline:
    time_end_s: float
    lanes: list[LaneKey] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    faults: list[FaultBand] = field(default_factory=list)
    transfers: list[TransferArrow] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    finals: dict[LaneKey, str] = field(default_factory=dict)
    peer_names: dict[int, str] = field(default_factory=dict)


def timeline_build(history: list[dict[str, Any]]) -> Timeline:
    timeline = Timeline(time_end_s=max(history_time_end_s(history), 1.0))
    timeline.peer_names = {int(k): str(v) for k, v in (history_meta(history).get("peers") or {}).items()}
    timeline.segments = segments_build(history, timeline.time_end_s)
    timeline.faults = faults_build(history, timeline.time_end_s)
    timeline.transfers = transfers_build(history, timeline.time_end_s)
    timeline.phases = [(str(r["name"]), float(r["time"])) for r in history if r.get("type") == "phase"]
    timeline.decisions = decisions_build(history)
    finals = history_finals(history, "replicas")
    for collection, shards in (finals[-1]["value"] if finals else {}).items():
        for shard, peers in shards.items():
            for peer, replica in peers.items():
                timeline.finals[(collection, int(shard), int(peer))] = str(replica.get("state"))
    lanes = {s.lane for s in timeline.segments} | set(timeline.finals)
    lanes |= {(t.collection, t.shard, p) for t in timeline.transfers for p in (t.peer_from, t.peer_to)}
    timeline.lanes = sorted(lanes)
    return timeline


def segments_build(history: list[dict[str, Any]], time_end_s: float) -> list[Segment]:
    open_segments: dict[LaneKey, tuple[str, float, str, str]] = {}
    segments: list[Segment] = []
    for time_s, event in history_events(history, "replica.state"):
        lane = (str(event.get("collection")), int(event.get("shard", 0)), int(event.get("peer", 0)))
        if lane in open_segments:
            state, start_s, reason, rule = open_segments.pop(lane)
            segments.append(Segment(lane, state, start_s, time_s, reason, rule))
        if event.get("to") not in REMOVED_STATES:
            open_segments[lane] = (str(event["to"]), time_s, str(event.get("reason") or ""),
                                   str(event.get("rule") or ""))
    for lane, (state, start_s, reason, rule) in open_segments.items():
        segments.append(Segment(lane, state, start_s, time_end_s, reason, rule))
    return sorted(segments, key=lambda s: (s.lane, s.start_s))


def faults_build(history: list[dict[str, Any]], time_end_s: float) -> list[FaultBand]:
    applied: dict[str, tuple[str, float]] = {}
    bands: list[FaultBand] = []
    for time_s, event in history_events(history, "fault.applied", "fault.healed"):
        fault_id = str(event.get("fault_id"))
        if event["kind"] == "fault.applied":
            target = event.get("target")
            label = f"{event.get('fault', 'fault')} {target}" if target else str(event.get("fault", "fault"))
            applied[fault_id] = (label, time_s)
        elif fault_id in applied:
            label, start_s = applied.pop(fault_id)
            bands.append(FaultBand(fault_id, label, start_s, time_s, True))
    bands += [FaultBand(i, label, start_s, time_end_s, False) for i, (label, start_s) in applied.items()]
    return sorted(bands, key=lambda b: b.start_s)


def transfers_build(history: list[dict[str, Any]], time_end_s: float) -> list[TransferArrow]:
    started: dict[tuple[Any, ...], tuple[float, dict[str, Any], int | None]] = {}
    arrows: list[TransferArrow] = []
    for time_s, event in history_events(history, "transfer."):
        key = (str(event.get("collection")), int(event.get("shard", 0)), int(event.get("from", 0)),
               int(event.get("to", 0)))
        sent = event.get("bytes")
        if event["kind"] == "transfer.started":
            started[key] = (time_s, event, None)
        elif key in started and event["kind"] == "transfer.phase":
            start_s, first, _ = started[key]
            started[key] = (start_s, first, sent if sent is not None else started[key][2])
        elif key in started and event["kind"] in ("transfer.finished", "transfer.aborted"):
            start_s, first, last_sent = started.pop(key)
            outcome = event["kind"].rpartition(".")[2]
            arrows.append(TransferArrow(*key, str(first.get("method") or "?"), start_s, time_s, outcome,
                                        sent if sent is not None else last_sent, str(event.get("reason") or "")))
    for key, (start_s, first, last_sent) in started.items():
        arrows.append(TransferArrow(*key, str(first.get("method") or "?"), start_s, time_end_s, "open",
                                    last_sent))
    return sorted(arrows, key=lambda a: a.start_s)


def decisions_build(history: list[dict[str, Any]]) -> list[Decision]:
    """Events that say why: anything with a rule or explanation, transfer retries and aborts, decisions."""
    found = []
    for time_s, event in history_events(history):
        kind = str(event.get("kind"))
        retry = kind == "transfer.phase" and event.get("phase") == "attempt_failed"
        if not (event.get("rule") or event.get("explanation") or retry
                or kind in ("transfer.aborted", "decision")):
            continue
        where = "/".join(str(event[k]) for k in ("collection", "shard", "peer") if event.get(k) is not None)
        if kind.startswith("transfer."):
            where += f" {event.get('from')}→{event.get('to')}"
        explanation = str(event.get("explanation") or event.get("reason") or "")
        if kind == "replica.state":
            explanation = f"{event.get('from') or '∅'} → {event.get('to') or 'removed'}: {explanation}"
        if retry:
            explanation = f"attempt {event.get('attempt')}: {explanation or event.get('phase', '')}"
        found.append(Decision(time_s, kind, where, str(event.get("rule") or ""), explanation))
    return sorted(found, key=lambda d: d.time_s)
