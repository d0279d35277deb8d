"""The cluster state and its only mutations. Pure: no I/O; the engine persists and pushes it.

The state is plain data (see node/protocol.py for its wire shape): peers, links (proxy listen addresses),
collections with the replica map `shard -> peer -> state`, transfers in progress, settings, and a
`version` that grows by one with every committed change. Every replica state change goes through
`replica_set`, which records a *decision*: the rule that fired and a sentence that names the cause, so
events, reports and the teaching step mode can say why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from node import clock
from node.protocol import PRIORITY_DEFAULT, ReplicaState, TransferKey, shard_replicas


@dataclass
class Decision:
    """One replica state change (or removal, `to` None) with its rule and explanation."""

    collection: str
    shard: int
    peer: int
    before: str | None
    to: str | None
    rule: str
    explanation: str

    def event(self) -> dict[str, Any]:
        return {"collection": self.collection, "shard": self.shard, "peer": self.peer, "from": self.before,
                "to": self.to, "reason": self.rule, "rule": self.rule, "explanation": self.explanation}


@dataclass
class ClusterState:
    data: dict[str, Any] = field(default_factory=lambda: {
        "version": 0, "peers": {}, "links": {}, "collections": {}, "transfers": [],
        "settings": {"default_priority": PRIORITY_DEFAULT, "incoming_transfers_limit": 1,
                     "outgoing_transfers_limit": 1}})
    decisions: list[Decision] = field(default_factory=list)

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.data["version"])

    def peer_name(self, peer_id: int) -> str:
        peer = self.data["peers"].get(str(peer_id))
        return peer["name"] if peer else f"peer {peer_id}"

    def peer_ids(self) -> list[int]:
        return sorted(int(peer) for peer in self.data["peers"])

    def collection(self, name: str) -> dict[str, Any] | None:
        return self.data["collections"].get(name)

    def replicas(self, name: str, shard: int) -> dict[int, str]:
        return shard_replicas(self.data, name, shard)

    def replica_state(self, name: str, shard: int, peer: int) -> str | None:
        return self.replicas(name, shard).get(peer)

    def transfers_of(self, name: str, shard: int | None = None) -> list[dict[str, Any]]:
        return [t for t in self.data["transfers"]
                if t["collection"] == name and (shard is None or t["shard_id"] == shard)]

    def transfer_find(self, name: str, shard: int, source: int, target: int) -> dict[str, Any] | None:
        """The transfer with this key (a `TransferKey` unpacks into these arguments), or None."""
        key = (name, shard, source, target)
        for transfer in self.data["transfers"]:
            if TransferKey.of(transfer) == key:
                return transfer
        return None

    def view_for(self, peer_id: int | None) -> dict[str, Any]:
        """The state as one node sees it: peer addresses are its proxy listen addresses to them."""
        view = copy.deepcopy(self.data)
        me = self.data["peers"].get(str(peer_id)) if peer_id is not None else None
        if me is not None:
            for peer in view["peers"].values():
                link = self.data["links"].get(f"{me['name']}->{peer['name']}")
                if link:
                    peer["address"] = link
        view.pop("links", None)
        return view

    # -- changing -----------------------------------------------------------------------------------------
    def commit(self) -> list[Decision]:
        """Close a change: the version grows by one; returns the decisions made since the last commit."""
        self.data["version"] = self.version + 1
        decisions, self.decisions = self.decisions, []
        return decisions

    def peer_set(self, peer_id: int, name: str, address: str) -> None:
        self.data["peers"][str(peer_id)] = {"peer_id": peer_id, "name": name, "address": address}

    def links_set(self, links: dict[str, str]) -> None:
        self.data["links"] = dict(links)

    def collection_add(self, name: str, config: dict[str, Any], placement: dict[int, list[int]],
                       state: str) -> None:
        self.data["collections"][name] = {"config": config, "shards": {}}
        for shard, peers in placement.items():
            for peer in peers:
                self.replica_set(name, shard, peer, state, "collection.create",
                                 f"{self.peer_name(peer)} gets a replica of shard {shard} of `{name}` "
                                 f"(placement, least-loaded peers first)")

    def collection_remove(self, name: str) -> None:
        self.data["collections"].pop(name, None)
        self.data["transfers"] = [t for t in self.data["transfers"] if t["collection"] != name]

    def replica_set(self, name: str, shard: int, peer: int, to: str | None, rule: str,
                    explanation: str) -> None:
        """Set (or with `to` None remove) one replica's state, recording the decision."""
        if to is not None:
            to = ReplicaState(to).value  # a known state, stored as its plain name
        collection = self.data["collections"][name]
        peers = collection["shards"].setdefault(str(shard), {})
        before = peers.get(str(peer))
        if before == to:
            return
        if to is None:
            peers.pop(str(peer), None)
        else:
            peers[str(peer)] = to
        self.decisions.append(Decision(name, shard, peer, before, to, rule, explanation))

    def transfer_add(self, name: str, shard: int, source: int, target: int, sync: bool,
                     method: str = "snapshot", reason: str = "user") -> dict[str, Any]:
        now = clock.now()
        transfer = {"collection": name, "shard_id": shard, "from": source, "to": target, "sync": sync,
                    "method": method, "phase": "started", "bytes": 0, "bytes_total": None, "attempt": 1,
                    "reason": reason, "started_at": now, "stage": "proxifying", "stage_started_at": now,
                    "recovery_stage": None, "recovery_stage_started_at": None, "comment": "proxifying (0.00s)"}
        self.data["transfers"].append(transfer)
        return transfer

    def transfer_remove(self, transfer: dict[str, Any]) -> None:
        self.data["transfers"] = [t for t in self.data["transfers"] if t is not transfer]
