"""Replica placement: which peers hold the replicas of each shard. A pure function, tested alone.

`shard_number * replication_factor` replicas are spread over the peers, least-loaded first (load = replicas
a peer already holds, in this and other collections), ties broken in peer order starting at the shard's
index (shard s prefers the s-th peer, so equal loads rotate), and never two replicas of one shard on the
same peer. With fewer peers than the replication factor, each shard gets one replica per peer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def placement(peer_ids: Iterable[int], shard_number: int, replication_factor: int,
              load: Mapping[int, int] | None = None) -> dict[int, list[int]]:
    """`shard -> [peer ids]`, each list of length min(replication_factor, number of peers)."""
    peers = sorted(set(peer_ids))
    if not peers:
        raise ValueError("no peers to place replicas on")
    if shard_number < 1 or replication_factor < 1:
        raise ValueError("shard_number and replication_factor must be at least 1")
    current = {peer: (load or {}).get(peer, 0) for peer in peers}
    result: dict[int, list[int]] = {}
    copies = min(replication_factor, len(peers))
    for shard in range(shard_number):
        chosen: list[int] = []
        for _ in range(copies):
            candidates = [index for index, peer in enumerate(peers) if peer not in chosen]
            best = peers[min(candidates, key=lambda index: (current[peers[index]],
                                                            (index - shard) % len(peers)))]
            chosen.append(best)
            current[best] += 1
        result[shard] = chosen
    return result
