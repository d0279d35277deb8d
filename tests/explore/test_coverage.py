"""The coverage map: a cell counts only when the history shows the fault in force in that phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.explore.coverage import (
    CoverageMap,
    cell_reachable,
    cells_reachable,
    cells_reached,
    coverage_page,
)

PEERS = {"1": "n1", "2": "n2", "3": "n3"}


def meta() -> dict[str, Any]:
    return {"type": "meta", "time": 0.0, "peers": PEERS, "collections": {"c": {"shard_number": 1}}}


def event(ts: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": "event", "time": ts, "event": {"ts": 1000.0 + ts, "kind": kind, **fields}}


def transfer(ts: float, kind: str, source: int = 1, target: int = 2, sync: bool = False, **fields: Any) -> dict[str, Any]:
    return event(ts, f"transfer.{kind}", collection="c", shard=0, sync=sync, **{"from": source, "to": target},
                 **fields)


def fault(ts: float, name: str, target: str, **params: Any) -> dict[str, Any]:
    return event(ts, "fault.applied", fault=name, target=target, params=params)


def move_history(*between: dict[str, Any]) -> list[dict[str, Any]]:
    """A move n1 -> n2 through every phase; `between` events are placed by their own times."""
    records = [meta(), transfer(1.0, "started", cause="user"), transfer(1.1, "phase", phase="queue_installed"),
               transfer(2.0, "phase", phase="streaming", bytes=100, bytes_total=1000),
               transfer(3.0, "phase", phase="restored"), transfer(3.5, "phase", phase="queued", queued=4),
               transfer(4.0, "phase", phase="partial"), transfer(5.0, "finished")]
    return sorted([*records, *between], key=lambda r: r["time"])


def test_each_phase_of_a_move_is_told_from_the_transfers_events() -> None:
    history = move_history(fault(1.2, "node_kill", "n2"), fault(2.1, "latency", "n2->n1"),
                           fault(3.2, "node_pause", "n1"), fault(4.1, "reset", "n1->n2"),
                           fault(5.5, "coordinator_restart", "coordinator"), fault(9.0, "partition", "n1 | n2,n3",
                                                                                  groups=[["n1"], ["n2", "n3"]]))
    assert cells_reached(history) == {
        ("kill_target", "before_stream", "move", "none"), ("latency", "mid_stream", "move", "none"),
        ("pause_source", "restored", "move", "none"), ("reset_peer", "partial", "move", "none"),
        ("coordinator_restart", "finished", "move", "none"), ("partition", "between", "move", "none")}


def test_a_planned_fault_that_never_fired_reaches_nothing() -> None:
    assert cells_reached(move_history()) == set()


def test_partial_counts_only_with_queued_updates() -> None:
    history = [meta(), transfer(1.0, "started", cause="user"), transfer(2.0, "phase", phase="restored"),
               transfer(2.5, "phase", phase="queued", queued=0), transfer(3.0, "phase", phase="partial"),
               fault(3.1, "node_kill", "n1"), transfer(4.0, "finished")]
    assert cells_reached(history) == set()


def test_faults_that_do_not_touch_the_transfer_are_not_counted() -> None:
    history = move_history(fault(3.2, "latency", "coord->n3"), fault(3.3, "isolate", "n3"),
                           fault(3.4, "partition", "n3 | n1,n2", groups=[["n3"], ["n1", "n2"]]),
                           fault(3.45, "node_kill", "n3"))
    assert cells_reached(history) == {("kill_other", "restored", "move", "none")}


def test_a_resync_after_a_snapshot_recovery_has_priority_snapshot() -> None:
    history = [meta(), event(0.5, "replica.state", collection="c", shard=0, peer=3, rule="priority.snapshot.others_dead"),
               transfer(1.0, "started", source=1, target=3, sync=True, cause="automatic recovery of a Dead replica"),
               transfer(2.0, "phase", source=1, target=3, sync=True, phase="restored"),
               fault(2.1, "node_kill", "n3"), transfer(3.0, "aborted", source=1, target=3, sync=True),
               transfer(4.0, "started", source=2, target=1, sync=True, cause="priority=replica: the existing win"),
               fault(4.1, "bandwidth", "n1->n2")]
    assert cells_reached(history) == {("kill_target", "restored", "replicate", "snapshot"),
                                      ("bandwidth", "before_stream", "replicate", "replica")}


def test_reachable_cells_leave_out_what_no_transfer_can_have() -> None:
    assert not cell_reachable(("latency", "restored", "move", "snapshot"))
    assert not cell_reachable(("latency", "restored", "replicate", "no_sync"))
    assert cell_reachable(("latency", "restored", "replicate", "replica"))
    assert len(cells_reachable()) == 16 * 6 * 4


def test_the_map_counts_runs_and_violations_and_says_so_on_its_page(tmp_path: Path) -> None:
    coverage = CoverageMap()
    coverage.add({("kill_target", "restored", "move", "none")}, violated=False, seed=1)
    coverage.add(["kill_target|restored|move|none", "latency|partial|move|none"], violated=True, seed=2)
    assert coverage.runs_of(("kill_target", "restored", "move", "none")) == 2
    assert CoverageMap.from_dict(coverage.to_dict()).to_dict() == coverage.to_dict()
    data_path, page_path = coverage.write(tmp_path, "t")
    page = page_path.read_text()
    assert "kill_target / restored / move / none: 2 runs, none violated" not in page
    assert "1 of 2 runs violated" in page and "latency / partial / move / none: 1 of 1 runs violated" in page
    assert "never reached" in page and "Unreachable: a recovery with priority no_sync" in page
    assert "<script" not in page
    assert '"cells_reached": 2' in data_path.read_text()
    assert not coverage.covered(1)


def test_the_page_names_every_matrix() -> None:
    page = coverage_page(CoverageMap(), "empty")
    for kind in ("move", "replicate"):
        for priority in ("none", "replica", "snapshot", "no_sync"):
            assert f"id='{kind}-{priority}'" in page
