"""The node's locks are named by what they serialise: two purposes never share a lock, whatever the shard."""

from __future__ import annotations

from pathlib import Path

from node.service import LockKey, LockPurpose, Node
from node.settings import NodeSettings


def test_shard_998s_recovery_key_is_not_shard_0s_transfer_key() -> None:
    # with the old magic numbers both were -1000: `-2 - 998` and `-1000 - 0`
    assert LockKey.shard_recovery("c", 998) != LockKey.transfer_receive("c", 0)


def test_keys_of_every_purpose_and_shard_are_distinct() -> None:
    shards = range(2000)
    keys = {make(name, shard) for name in ("c", "d") for shard in shards
            for make in (LockKey.shard_data, LockKey.shard_recovery, LockKey.transfer_receive)}
    keys |= {LockKey.collection_recovery("c"), LockKey.collection_recovery("d")}
    assert len(keys) == 2 * len(shards) * 3 + 2
    assert {key.purpose for key in keys} == set(LockPurpose)


async def test_a_node_hands_out_one_lock_per_key(tmp_path: Path) -> None:
    node = Node(NodeSettings(data_dir=tmp_path, snapshots_dir=tmp_path / "snapshots"))
    recovery = node.lock(LockKey.shard_recovery("c", 998))
    transfer = node.lock(LockKey.transfer_receive("c", 0))
    assert recovery is not transfer
    assert node.lock(LockKey.shard_recovery("c", 998)) is recovery
    async with recovery:
        assert not transfer.locked(), "a shard recovery must not hold up another shard's transfer"
        assert node.lock(LockKey.shard_recovery("c", 998)).locked()
