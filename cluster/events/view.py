"""The cluster as seen from the event bus alone: a pure state model that `shardsim watch` draws.

`ClusterView.apply(event)` folds one event payload into the model (peers up or down, the replica map with
each replica's state, transfers in progress with their phase and bytes, active faults, the latest decisions
and operation counts); `ClusterView.render()` turns it into text. No I/O and no clock here: everything comes
from the events, so the view can be tested with literal events and replayed from a recorded history.
Malformed or unknown events never raise; they are only counted.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster.events.view_text import view_render

RECENT_LINES_MAX = 8
FINISHED_TRANSFERS_MAX = 5

Event = Mapping[str, Any]
ShardKey = tuple[str, str]
TransferViewKey = tuple[str, str, str, str]  # as the events spell it (strings)


@dataclass
class PeerView:
    peer_id: str
    name: str = ""
    address: str = ""
    up: bool = True


@dataclass
class TransferView:
    collection: str
    shard: str
    source_peer: str
    target_peer: str
    method: str = ""
    phase: str = "started"
    bytes_done: int = 0
    bytes_total: int | None = None
    attempt: int = 1
    outcome: str = ""


@dataclass
class FaultView:
    fault_id: str
    fault: str
    target: str
    params: Any = None


@dataclass
class ClusterView:
    """Peers, replica states, transfers, faults and recent decisions, folded from events in arrival order."""

    peers: dict[str, PeerView] = field(default_factory=dict)
    replicas: dict[ShardKey, dict[str, str]] = field(default_factory=dict)
    transfers: dict[TransferViewKey, TransferView] = field(default_factory=dict)
    transfers_finished: deque[TransferView] = field(default_factory=lambda: deque(maxlen=FINISHED_TRANSFERS_MAX))
    faults: dict[str, FaultView] = field(default_factory=dict)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_LINES_MAX))
    op_counts: Counter[str] = field(default_factory=Counter)
    event_count: int = 0
    ignored_count: int = 0

    def apply(self, event: Event) -> None:
        """Fold one event payload (`{"ts", "source", "kind", ...}`) into the view."""
        self.event_count += 1
        kind = str(event.get("kind", ""))
        handler = _HANDLERS.get(kind) or (_op if kind.startswith("op.") else None)
        if handler is None:
            self.ignored_count += 1
            return
        try:
            handler(self, event)
        except (KeyError, TypeError, ValueError):
            self.ignored_count += 1

    def peer(self, peer_id: Any) -> PeerView:
        key = str(peer_id)
        return self.peers.setdefault(key, PeerView(peer_id=key))

    def render(self, color: bool = False) -> str:
        """The whole view as text, one section per concern (ANSI colors when `color`)."""
        return view_render(self, color)


def _node_started(view: ClusterView, event: Event) -> None:
    peer = view.peer(event["peer_id"])
    peer.name = str(event.get("name") or peer.name)
    peer.address = str(event.get("address") or peer.address)
    peer.up = True


def _node_stopped(view: ClusterView, event: Event) -> None:
    view.peer(event["peer_id"]).up = False


def _replica_state(view: ClusterView, event: Event) -> None:
    shard_key = (str(event["collection"]), str(event["shard"]))
    peer_id = str(event["peer"])
    view.peer(peer_id)
    replicas = view.replicas.setdefault(shard_key, {})
    if event.get("to") is None:
        replicas.pop(peer_id, None)
    else:
        replicas[peer_id] = str(event["to"])
    why = _why(event)
    view.recent.append(f"{_clock(event)} {shard_key[0]}/{shard_key[1]} peer {peer_id}: "
                       f"{event.get('from') or '-'} -> {event.get('to') or 'removed'}{why}")


def _decision(view: ClusterView, event: Event) -> None:
    where = f" {event.get('collection')}/{event.get('shard')}" if event.get("collection") is not None else ""
    peer = f" peer {event.get('peer')}" if event.get("peer") is not None else ""
    view.recent.append(f"{_clock(event)} decision{where}{peer}:{_why(event)}")


def _transfer_key(event: Event) -> TransferViewKey:
    return (str(event["collection"]), str(event["shard"]), str(event["from"]), str(event["to"]))


def _transfer_update(view: ClusterView, event: Event) -> None:
    key = _transfer_key(event)
    transfer = view.transfers.get(key) or TransferView(*key)
    view.transfers[key] = transfer
    transfer.method = str(event.get("method") or transfer.method)
    transfer.phase = str(event.get("phase") or ("started" if event["kind"] == "transfer.started" else transfer.phase))
    if isinstance(event.get("bytes"), int):
        transfer.bytes_done = event["bytes"]
    if isinstance(event.get("bytes_total"), int):
        transfer.bytes_total = event["bytes_total"]
    if isinstance(event.get("attempt"), int):
        transfer.attempt = event["attempt"]


def _transfer_end(view: ClusterView, event: Event) -> None:
    key = _transfer_key(event)
    transfer = view.transfers.pop(key, None) or TransferView(*key, method=str(event.get("method") or ""))
    transfer.outcome = "finished" if event["kind"] == "transfer.finished" else "aborted"
    if event.get("reason"):
        transfer.outcome += f" ({event['reason']})"
    view.transfers_finished.append(transfer)


def _fault_applied(view: ClusterView, event: Event) -> None:
    fault_id = str(event["fault_id"])
    view.faults[fault_id] = FaultView(fault_id, str(event.get("fault", "")), str(event.get("target", "")),
                                      event.get("params"))


def _fault_healed(view: ClusterView, event: Event) -> None:
    view.faults.pop(str(event["fault_id"]), None)


def _snapshot(view: ClusterView, event: Event) -> None:
    shard = f" shard {event['shard']}" if event.get("shard") is not None else ""
    priority = f" priority {event['priority']}" if event.get("priority") else ""
    view.recent.append(f"{_clock(event)} {event['kind']} {event.get('collection')}{shard}: "
                       f"{event.get('name')}{priority}")


def _op(view: ClusterView, event: Event) -> None:
    view.op_counts[str(event["kind"]).removeprefix("op.")] += 1


def _why(event: Event) -> str:
    reason = f" ({event['reason']})" if event.get("reason") else ""
    rule = f" rule {event['rule']}" if event.get("rule") else ""
    explanation = f": {event['explanation']}" if event.get("explanation") else ""
    return f"{reason}{rule}{explanation}"


def _clock(event: Event) -> str:
    ts = event.get("ts")
    if not isinstance(ts, int | float):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(ts))


_HANDLERS: dict[str, Callable[[ClusterView, Event], None]] = {
    "node.started": _node_started,
    "node.stopped": _node_stopped,
    "replica.state": _replica_state,
    "decision": _decision,
    "transfer.started": _transfer_update,
    "transfer.phase": _transfer_update,
    "transfer.finished": _transfer_end,
    "transfer.aborted": _transfer_end,
    "fault.applied": _fault_applied,
    "fault.healed": _fault_healed,
    "snapshot.created": _snapshot,
    "snapshot.deleted": _snapshot,
    "snapshot.recovered": _snapshot,
}
