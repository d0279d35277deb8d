"""Transfer operations are validated as Qdrant validates them, with Qdrant's status codes and messages.

Reference: docs/cluster.md, "The cluster API" (its errors, as Qdrant words them): unknown shard or peer 400,
from == to 422, source not Active 400, a shard already involved in a transfer 400, abort of a transfer that
does not exist 404; a target that already holds a replica is accepted and re-synced. The transfer's comment
names Qdrant's stage and its elapsed seconds. A transfer is held after its first phase (the coordinator's `transfer_phase_pause_s`
setting) so that the "already involved" refusal can be seen while it runs.
"""

from __future__ import annotations

import re

from cluster.launcher import Cluster
from node.retry import wait_until
from tests.cluster.helpers import ClusterApi, replica_map, transfer_operation, transfers_of, wait_converged
from tests.helpers import points_make


async def refusal(api: ClusterApi, node: str, operation: dict[str, object]) -> tuple[int, str]:
    status, reply = await api.cluster_operation(node, "c", operation)
    return status, reply["status"]["error"]


async def test_transfer_operations_refuse_with_qdrant_errors(cluster: Cluster, api: ClusterApi) -> None:
    await api.collection_create("n1", "c", shard_number=1, replication_factor=2)
    await api.upsert_ok("n1", "c", points_make(range(200)))
    source, holder = sorted(replica_map(await api.state(), "c")[0])
    outsider = next(p for p in (1, 2, 3) if p not in (source, holder))

    def move(shard: int, from_peer: int, to_peer: int, key: str = "move_shard") -> dict[str, object]:
        return transfer_operation(key, from_peer, to_peer, shard)
    expected = [
        (move(0, source, source, "replicate_shard"), 422, "Validation error in JSON body: "
         f"[replicate_shard.to_peer_id: cannot transfer shard to itself, \"to_peer_id\" must be different than "
         f"{source} in \"from_peer_id\"]"),
        (move(0, source, source), 422, "Validation error in JSON body: [move_shard.to_peer_id: cannot transfer "
         f"shard to itself, \"to_peer_id\" must be different than {source} in \"from_peer_id\"]"),
        (move(4, source, outsider), 400, "Bad request: Shard 4 of c does not exist"),
        (move(0, 9, outsider), 400, "Bad request: Peer 9 does not exist"),
        (move(0, source, 9), 400, "Bad request: Peer 9 does not exist"),
        (move(0, outsider, source), 400, f"Bad request: Shard 0 is not active on peer {outsider}"),
        (move(0, source, outsider, "abort_transfer"), 404, f"Not found: Shard transfer {source} -> {outsider} "
         f"for collection c:0 does not exist"),
    ]
    for operation, status, message in expected:
        assert await refusal(api, "n2", operation) == (status, message), operation
    status, reply = await api.cluster_operation("n1", "nowhere", move(0, source, outsider))
    assert (status, reply["status"]["error"]) == (404, "Not found: Collection `nowhere` doesn't exist!")
    assert replica_map(await api.state(), "c") == {0: {source: "Active", holder: "Active"}}

    await api.settings_set(transfer_phase_pause_s={"queue_installed": 4.0})
    await api.ok("n3", "POST", "/collections/c/cluster", move(0, source, outsider, "replicate_shard"))

    async def registered() -> bool:
        shown = (await api.cluster_info("n1", "c"))["shard_transfers"]
        return bool(shown) and str(shown[0]["comment"]).startswith("recovering (")
    await wait_until(registered, 10.0, what="the transfer to show its stage in the cluster info")
    shown = (await api.cluster_info("n2", "c"))["shard_transfers"]
    assert shown[0]["from"] == source and shown[0]["to"] == outsider and shown[0]["sync"] is True
    assert shown[0]["method"] == "snapshot" and re.fullmatch(r"recovering \(\d+\.\d\ds\)", shown[0]["comment"])
    involved = f"Bad request: Shard 0 is already involved in transfer {source} -> {outsider}"
    assert await refusal(api, "n1", move(0, holder, outsider, "replicate_shard")) == (400, involved)
    assert await refusal(api, "n1", move(0, source, holder)) == (400, involved)
    assert replica_map(await api.state(), "c")[0][outsider] == "Recovery"
    await api.ok("n2", "POST", "/collections/c/cluster", move(0, source, outsider, "abort_transfer"))
    state = await api.state()
    assert not transfers_of(state, "c")
    assert replica_map(state, "c")[0][outsider] == "Dead", "an aborted replicate leaves its target Dead"
    await api.settings_set(transfer_phase_pause_s={})
    await wait_converged(api, "c", replicas_per_shard=3)
