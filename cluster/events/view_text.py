"""Text rendering of a `ClusterView` for `shardsim watch`: tables, progress bars, optional ANSI colors.

Kept apart from the model in `view.py` so the model stays a plain fold over events and the drawing can
change without touching it. Pure: the same view always renders to the same text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from node.protocol import ReplicaState

if TYPE_CHECKING:
    from cluster.events.view import ClusterView, TransferView

STATE_COLORS = {ReplicaState.ACTIVE.value: "32", ReplicaState.DEAD.value: "31",
                ReplicaState.PARTIAL.value: "33", ReplicaState.RECOVERY.value: "36",
                ReplicaState.INITIALIZING.value: "36", ReplicaState.MANUAL_RECOVERY.value: "35",
                ReplicaState.LISTENER.value: "34", "up": "32", "down": "31"}
PROGRESS_WIDTH = 20
CELL_WIDTH = 14


def view_render(view: ClusterView, color: bool) -> str:
    lines = [f"shardsim watch   events {view.event_count}   peers {len(view.peers)}   "
             f"transfers {len(view.transfers)}   faults {len(view.faults)}"]
    lines += _peers_section(view, color)
    lines += _shards_section(view, color)
    lines += _transfers_section(view)
    lines += _faults_section(view)
    if view.recent:
        lines += ["", "RECENT"] + [f"  {line}" for line in view.recent]
    if view.op_counts:
        counts = "  ".join(f"{name} {view.op_counts[name]}" for name in sorted(view.op_counts))
        lines += ["", f"OPS  {counts}"]
    return "\n".join(lines) + "\n"


def progress_bar(bytes_done: int, bytes_total: int | None, width: int = PROGRESS_WIDTH) -> str:
    """`[#########...........]  45%  4.5/10.0 MiB`, or only the bytes when the total is unknown."""
    if not bytes_total or bytes_total <= 0:
        return f"{_mib(bytes_done)} MiB"
    fraction = min(max(bytes_done / bytes_total, 0.0), 1.0)
    filled = int(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}  {_mib(bytes_done)}/{_mib(bytes_total)} MiB"


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / (1 << 20):.1f}"


def _paint(text: str, key: str, color: bool) -> str:
    code = STATE_COLORS.get(key)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def _peer_sort_key(peer_id: str) -> tuple[int, int | str]:
    return (0, int(peer_id)) if peer_id.isdigit() else (1, peer_id)


def _peers_section(view: ClusterView, color: bool) -> list[str]:
    if not view.peers:
        return []
    lines = ["", "PEERS"]
    for peer_id in sorted(view.peers, key=_peer_sort_key):
        peer = view.peers[peer_id]
        status = "up" if peer.up else "down"
        lines.append(f"  {peer_id:<6} {peer.name:<10} {peer.address:<22} {_paint(status, status, color)}")
    return lines


def _shards_section(view: ClusterView, color: bool) -> list[str]:
    if not view.replicas:
        return []
    peer_ids = sorted(view.peers, key=_peer_sort_key)
    header = f"  {'collection/shard':<20}" + "".join(f"{'peer ' + peer_id:<{CELL_WIDTH}}" for peer_id in peer_ids)
    lines = ["", "SHARDS", header.rstrip()]
    for collection, shard in sorted(view.replicas, key=lambda key: (key[0], _peer_sort_key(key[1]))):
        states = view.replicas[(collection, shard)]
        cells = []
        for peer_id in peer_ids:
            state = states.get(peer_id, "-")
            cells.append(_paint(f"{state:<{CELL_WIDTH}}", state, color))
        lines.append((f"  {collection + '/' + shard:<20}" + "".join(cells)).rstrip())
    return lines


def _transfer_line(transfer: TransferView) -> str:
    where = f"{transfer.collection}/{transfer.shard} {transfer.source_peer} -> {transfer.target_peer}"
    return (f"  {where:<24} {transfer.method:<9} {transfer.phase:<12} "
            f"{progress_bar(transfer.bytes_done, transfer.bytes_total)}  attempt {transfer.attempt}")


def _transfers_section(view: ClusterView) -> list[str]:
    lines: list[str] = []
    if view.transfers:
        lines += ["", "TRANSFERS"] + [_transfer_line(transfer) for transfer in view.transfers.values()]
    if view.transfers_finished:
        lines += ["", "ENDED TRANSFERS"]
        for transfer in view.transfers_finished:
            lines.append(f"  {transfer.collection}/{transfer.shard} {transfer.source_peer} -> "
                         f"{transfer.target_peer} {transfer.method} {transfer.outcome}".rstrip())
    return lines


def _faults_section(view: ClusterView) -> list[str]:
    if not view.faults:
        return []
    lines = ["", "FAULTS"]
    for fault in view.faults.values():
        params = json.dumps(fault.params, default=str) if fault.params else ""
        lines.append(f"  {fault.fault_id:<10} {fault.fault:<12} {fault.target:<16} {params}".rstrip())
    return lines
