"""What a scenario is: plain data plus a seeded plan, one file per scenario in `scenarios/`.

A scenario file defines `SCENARIO = Scenario(...)`: a description, the cluster shape, the collections to
create in setup, the plan (an async function of a `RunContext` that runs the workload and the faults, all
choices drawn from `ctx.rng`), and the names of the checkers that judge the history. The runner does the
rest: start the cluster, setup, plan, heal everything, wait for the cluster to settle, final reads, check,
report.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.protocol import PRIORITY_DEFAULT

if TYPE_CHECKING:
    from cluster.runner.context import RunContext

DEFAULT_CHECKERS = ("no_lost_writes", "replicas_converge", "nothing_stuck", "replication_factor")


@dataclass
class CollectionSpec:
    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1
    vector_size: int = 8
    distance: str = "Cosine"
    created_in_setup: bool = True  # False: the plan creates it (the runner still observes and judges it)

    def body(self) -> dict[str, Any]:
        return {"vectors": {"size": self.vector_size, "distance": self.distance},
                "shard_number": self.shard_number, "replication_factor": self.replication_factor,
                "write_consistency_factor": self.write_consistency_factor}


@dataclass
class Scenario:
    name: str
    description: str
    plan: Callable[[RunContext], Awaitable[None]]
    nodes: int = 3
    collections: dict[str, CollectionSpec] = field(default_factory=dict)
    checkers: tuple[str, ...] = DEFAULT_CHECKERS
    default_priority: str = PRIORITY_DEFAULT
    grace_s: float = 30.0
    timeout_s: float = 180.0
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def scenario_load(path: Path) -> Scenario:
    """Import a scenario file and return its `SCENARIO`."""
    spec = importlib.util.spec_from_file_location(f"shardsim_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise ValueError(f"{path} defines no `SCENARIO = Scenario(...)`")
    scenario.path = path
    return scenario


def scenario_paths(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.glob("*.py") if not p.name.startswith("_"))
    return [target]
