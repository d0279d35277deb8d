"""Plain data of the priority oracle: a replica and a snapshot as the model holds them, and a prediction.

Kept apart from the model (`oracle_model.py`) and the recovery rules (`oracle_rules.py`) so both can use
them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.protocol import PointId, ReplicaState

ReplicaKey = tuple[str, int, int]
Points = dict[PointId, tuple[list[float], dict[str, Any]]]


@dataclass(frozen=True)
class Prediction:
    """The predicted end of one replica: content digest (None: not predictable), state (`Removed` if the
    replica is dropped, None if not predictable) and the rule that decided it, with a sentence saying why."""

    digest: str | None
    state: str | None
    rule: str
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "state": self.state, "rule": self.rule, "explanation": self.explanation}


@dataclass
class ReplicaModel:
    points: Points = field(default_factory=dict)
    known: bool = True
    state: str | None = ReplicaState.ACTIVE.value
    rule: str = "initial"
    explanation: str = "placed at setup; received every acknowledged write"


@dataclass
class SnapshotModel:
    """A snapshot as the model took it: the content of each shard it holds and whether that is certain."""

    op_id: int
    collection: str
    peer: int
    name: str | None
    checksum: str | None
    shards: dict[int, tuple[Points, bool]]
