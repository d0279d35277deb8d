"""The report's timeline: what the swimlane will draw, read out of a literal history."""

from __future__ import annotations

from cluster.report.timeline import timeline_build
from tests.cluster.report.sample_history import sample_history


def test_lanes_and_segments_follow_replica_state_events() -> None:
    timeline = timeline_build(sample_history())
    assert timeline.lanes == [("c", 0, 1), ("c", 0, 2), ("c", 1, 1), ("c", 1, 2), ("c", 1, 3)]
    lane = [(s.state, s.start_s, s.end_s) for s in timeline.segments if s.lane == ("c", 0, 2)]
    assert lane == [("Initializing", 0.4, 0.9), ("Active", 0.9, 7.5), ("Dead", 7.5, 10.0),
                    ("Recovery", 10.0, 11.5), ("Active", 11.5, 13.5)]


def test_faults_transfers_phases_and_decisions() -> None:
    timeline = timeline_build(sample_history())
    assert [(f.label, f.start_s, f.end_s) for f in timeline.faults] == [("link_down n3->n2", 2.0, 9.5)]
    assert [(t.peer_from, t.peer_to, t.outcome, t.bytes_sent) for t in timeline.transfers] == [
        (2, 1, "finished", 4096), (2, 3, "aborted", 1024), (1, 2, "finished", 8192)]
    assert [name for name, _ in timeline.phases] == ["setup", "workload", "heal", "grace", "final", "check"]
    kinds = [(d.time_s, d.kind) for d in timeline.decisions]
    assert (4.5, "transfer.phase") in kinds and (9.0, "transfer.aborted") in kinds and (7.5, "decision") in kinds
    assert kinds == sorted(kinds, key=lambda k: k[0])


def test_removed_replica_ends_its_lane() -> None:
    from tests.cluster.checkers.histories import replica_state

    history = [replica_state(1.0, "c", 0, 1, "Active"), replica_state(3.0, "c", 0, 1, None, "Active"),
               {"type": "phase", "time": 5.0, "name": "check"}]
    segments = timeline_build(history).segments
    assert [(s.state, s.start_s, s.end_s) for s in segments] == [("Active", 1.0, 3.0)]
