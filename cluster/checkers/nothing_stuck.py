"""Checker `nothing_stuck`: after heal and grace, no transfer is in progress and every replica is Active.

Transfers come from the bus events: a `transfer.started` for (collection, shard, from, to) is open until a
`transfer.finished` or `transfer.aborted` for the same key, considering only events recorded before the
`final replicas` observation. Replica states come from that observation. This is the liveness verdict:
a cluster that never settles fails here even if no data was lost. A broker outage may swallow a
transfer's end event; such a transfer is not held open when its target ended neither in Recovery nor in
Partial (`end_events_maybe_lost` in the details).
"""

from __future__ import annotations

import math
from typing import Any

from cluster.checkers.result import CheckResult
from cluster.history import history_events, history_finals
from node.protocol import ReplicaState, TransferKey

NAME = "nothing_stuck"


def transfers_open(history: list[dict[str, Any]], time_until_s: float) -> list[dict[str, Any]]:
    """Transfers started and neither finished nor aborted by `time_until_s`, as their start events."""
    open_transfers: dict[TransferKey, dict[str, Any]] = {}
    for time_s, event in history_events(history, "transfer."):
        if time_s > time_until_s:
            break
        key = TransferKey.of(event)
        if event["kind"] == "transfer.started":
            open_transfers[key] = {**event, "time": time_s}
        elif event["kind"] in ("transfer.finished", "transfer.aborted"):
            open_transfers.pop(key, None)
    return list(open_transfers.values())


def events_maybe_lost(history: list[dict[str, Any]], transfers: list[dict[str, Any]],
                      final: dict[str, Any]) -> list[dict[str, Any]]:
    """Open transfers whose end event a broker outage may have swallowed (an event the broker took just
    before it stopped is lost): one started before an outage ended, whose target is not left in Recovery or
    Partial at the final observation (a transfer really still running keeps its target there)."""
    applied = [t for t, event in history_events(history, "fault.applied") if event.get("fault") == "broker_outage"]
    healed = [t for t, event in history_events(history, "fault.healed") if event.get("fault") == "broker_outage"]
    if not applied:
        return []
    outage_end = max(healed) if len(healed) >= len(applied) else math.inf
    lost = []
    for transfer in transfers:
        target = (final.get(str(transfer.get("collection")), {}).get(str(transfer.get("shard")), {})
                  .get(str(transfer.get("to"))) or {})
        if float(transfer.get("time", 0.0)) <= outage_end and \
                target.get("state") not in (ReplicaState.RECOVERY, ReplicaState.PARTIAL):
            lost.append(transfer)
    return lost


def check(history: list[dict[str, Any]]) -> CheckResult:
    finals = history_finals(history, "replicas")
    if not finals:
        return CheckResult(NAME, None, "no final replicas observation", {})
    final = finals[-1]
    transfers = transfers_open(history, float(final.get("time", 0.0)))
    replicas = {f"{c}/{s}/{p}": r.get("state") for c, shards in (final["value"] or {}).items()
                for s, peers in shards.items() for p, r in peers.items() if r.get("state") != ReplicaState.ACTIVE}
    lost = events_maybe_lost(history, transfers, final["value"] or {})
    transfers = [t for t in transfers if t not in lost]
    details = {"transfers_open": transfers, "replicas_not_active": replicas, "end_events_maybe_lost": lost}
    if transfers or replicas:
        parts = [f"{len(transfers)} transfers still open"] if transfers else []
        parts += [f"{len(replicas)} replicas not Active"] if replicas else []
        return CheckResult(NAME, False, "; ".join(parts), details)
    return CheckResult(NAME, True, "no transfer open, every replica Active", details)
