"""Planted bugs: known replication defects that tests switch on to prove the explorer finds them.

Inert unless the environment variable `SHARDSIM_PLANT` names them (comma-separated), e.g.
`SHARDSIM_PLANT=queue_not_replayed shardsim explore --sim`. Each plant is read at exactly one place in the
code, a one-line `if planted("name")` marked `# plant:`; `grep -rn "planted(" node cluster` lists them all.
The variable reaches every process of a cluster (children inherit the environment) and every host of a
simulation (one process). Nothing else in shardsim reads it, and a name not listed here is refused.

This is test equipment, the way VOPR and FoundationDB's simulator check their own power: a checker or a
search that cannot find a bug planted on purpose would not find the real ones either.
"""

from __future__ import annotations

import os

ENVIRONMENT_VARIABLE = "SHARDSIM_PLANT"

PLANTS: dict[str, str] = {
    "queue_not_replayed": "the source drops the updates it queued during a transfer instead of replaying them "
                          "(node/replication/source.py, replay)",
    "active_before_replay": "the source reports a transfer finished (target Active, a move's source dropped) "
                            "before it replays the queued updates (node/replication/source.py, transfer_steps)",
    "two_attempts": "a transfer is given up after two failed attempts instead of three "
                    "(node/replication/source.py, transfer_drive)",
    "snapshot_priority_keeps_others": "a shard recovery with priority=snapshot leaves the other replicas Active "
                                      "instead of marking them Dead (cluster/coordinator/priority.py)",
    "aborted_replicate_left_recovery": "an aborted replicate leaves its target in Recovery instead of Dead "
                                       "(cluster/coordinator/operations.py, transfer_abort)",
    "abort_keeps_move_target": "an aborted move leaves its target as a Dead replica instead of removing it "
                               "(cluster/coordinator/operations.py, transfer_abort)",
    "move_keeps_source": "a finished move keeps its source replica (cluster/coordinator/operations.py, "
                         "transfer_finish)",
    "recovery_skips_checksum": "a snapshot recovery does not compare the checksum it was given "
                               "(node/snapshots/restore.py, checksum_verify)",
}


def planted(name: str) -> bool:
    """Whether plant `name` is switched on in this process's environment."""
    assert name in PLANTS, f"no plant named {name!r}"
    value = os.environ.get(ENVIRONMENT_VARIABLE) or ""
    return name in value.split(",")


def plants_active() -> list[str]:
    """The known plants switched on (for reports); unknown names in the variable are ignored here."""
    value = os.environ.get(ENVIRONMENT_VARIABLE) or ""
    return [name for name in value.split(",") if name in PLANTS]
