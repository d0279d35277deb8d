"""ClusterView folds literal events into peers, replica states, transfers and faults, and renders them."""

from __future__ import annotations

from typing import Any

from cluster.events.view import ClusterView
from cluster.events.view_text import progress_bar

MIB = 1 << 20


EVENT_TS = 1_700_000_000.0


def event(kind: str, source: str = "coordinator", /, **fields: Any) -> dict[str, Any]:
    return {"ts": EVENT_TS, "source": source, "kind": kind, **fields}


def started_cluster() -> ClusterView:
    view = ClusterView()
    for peer_id in (1, 2, 3):
        view.apply(event("node.started", f"node/{peer_id}", peer_id=peer_id, name=f"n{peer_id}",
                         address=f"127.0.0.1:600{peer_id}"))
    for peer_id in (1, 2):
        view.apply(event("replica.state", collection="books", shard=0, peer=peer_id, **{"from": None},
                         to="Active", reason="placement", rule="P1", explanation="Placed least-loaded first."))
    return view


def test_peers_and_replica_states() -> None:
    view = started_cluster()
    view.apply(event("node.stopped", "node/2", peer_id=2, name="n2", address="127.0.0.1:6002"))
    view.apply(event("replica.state", collection="books", shard=0, peer=2, **{"from": "Active"}, to="Dead",
                     reason="node stopped", rule="R2", explanation="An unreachable replica is marked Dead."))
    assert [(peer.peer_id, peer.name, peer.up) for peer in view.peers.values()] == \
        [("1", "n1", True), ("2", "n2", False), ("3", "n3", True)]
    assert view.replicas == {("books", "0"): {"1": "Active", "2": "Dead"}}
    assert view.recent[-1].endswith("books/0 peer 2: Active -> Dead (node stopped) rule R2: "
                                    "An unreachable replica is marked Dead.")


def test_replica_removed_when_state_becomes_none() -> None:
    view = started_cluster()
    view.apply(event("replica.state", collection="books", shard=0, peer=2, **{"from": "Active"}, to=None,
                     reason="moved", rule="T9", explanation="A moved shard's source replica is dropped."))
    assert view.replicas[("books", "0")] == {"1": "Active"}


def test_transfer_progress_then_finish() -> None:
    view = started_cluster()
    fields: dict[str, Any] = {"collection": "books", "shard": 0, "from": 1, "to": 3, "method": "snapshot", "sync": False}
    view.apply(event("transfer.started", **fields, phase="started", bytes=0, bytes_total=None, attempt=1))
    view.apply(event("transfer.phase", **fields, phase="streaming", bytes=5 * MIB, bytes_total=10 * MIB, attempt=1))
    (transfer,) = view.transfers.values()
    assert (transfer.phase, transfer.bytes_done, transfer.bytes_total, transfer.method) == \
        ("streaming", 5 * MIB, 10 * MIB, "snapshot")
    assert "books/0 1 -> 3" in view.render() and "[##########..........]  50%  5.0/10.0 MiB" in view.render()

    view.apply(event("transfer.finished", **fields, phase="done", bytes=10 * MIB, bytes_total=10 * MIB, attempt=1))
    assert view.transfers == {}
    assert view.transfers_finished[-1].outcome == "finished"
    assert "\nTRANSFERS\n" not in view.render() and "books/0 1 -> 3 snapshot finished" in view.render()


def test_aborted_transfer_keeps_the_reason() -> None:
    view = started_cluster()
    fields: dict[str, Any] = {"collection": "books", "shard": 0, "from": 1, "to": 3, "method": "snapshot"}
    view.apply(event("transfer.started", **fields, attempt=1))
    view.apply(event("transfer.aborted", **fields, attempt=3, reason="3 attempts failed"))
    assert view.transfers == {}
    assert view.transfers_finished[-1].outcome == "aborted (3 attempts failed)"


def test_faults_applied_then_healed() -> None:
    view = ClusterView()
    view.apply(event("fault.applied", "nemesis", fault_id="f1", fault="latency", target="n1->n2",
                     params={"latency_ms": 200}))
    view.apply(event("fault.applied", "nemesis", fault_id="f2", fault="kill", target="n3", params={}))
    assert sorted(view.faults) == ["f1", "f2"]
    assert 'f1         latency      n1->n2           {"latency_ms": 200}' in view.render()
    view.apply(event("fault.healed", "nemesis", fault_id="f1", fault="latency", target="n1->n2", params={}))
    assert list(view.faults) == ["f2"]


def test_ops_decisions_snapshots_and_unknown_events() -> None:
    view = ClusterView()
    for kind in ("op.invoke", "op.ok", "op.invoke", "op.info"):
        view.apply(event(kind, "client", process=0, op_id=1, f="write", value=1))
    view.apply(event("decision", rule="R5", explanation="Dead replica re-synced from an Active one.",
                     collection="books", shard=1, peer=3))
    view.apply(event("snapshot.recovered", "node/3", collection="books", shard=1, name="books-shard-1.snapshot",
                     checksum="ab", priority="replica", size=10))
    view.apply(event("something.new", extra=1))
    view.apply({"kind": "replica.state"})  # malformed: missing fields
    assert dict(view.op_counts) == {"invoke": 2, "ok": 1, "info": 1}
    assert view.recent[0].endswith("decision books/1 peer 3: rule R5: Dead replica re-synced from an Active one.")
    assert view.recent[1].endswith("snapshot.recovered books shard 1: books-shard-1.snapshot priority replica")
    assert (view.event_count, view.ignored_count) == (8, 2)
    assert "OPS  info 1  invoke 2  ok 1" in view.render()


def test_render_shard_table_has_one_column_per_peer() -> None:
    view = started_cluster()
    view.apply(event("replica.state", collection="books", shard=1, peer=3, **{"from": None}, to="Recovery",
                     reason="transfer", rule="T1", explanation="A transfer target starts in Recovery."))
    lines = view.render().splitlines()
    header = lines.index("SHARDS") + 1
    assert lines[header].split() == ["collection/shard", "peer", "1", "peer", "2", "peer", "3"]
    assert lines[header + 1].split() == ["books/0", "Active", "Active", "-"]
    assert lines[header + 2].split() == ["books/1", "-", "-", "Recovery"]
    colored = view.render(color=True)
    assert "\x1b[32mActive" in colored and "\x1b[36mRecovery" in colored and "\x1b[" not in view.render()


def test_progress_bar_bounds() -> None:
    assert progress_bar(0, 100, width=10) == "[..........]   0%  0.0/0.0 MiB"
    assert progress_bar(150, 100, width=10).startswith("[##########] 100%")
    assert progress_bar(3 * MIB, None) == "3.0 MiB"
