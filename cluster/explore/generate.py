"""Drawing a schedule from a seed, steered toward the coverage cells reached least so far.

`schedule_generate(seed, coverage)` is a pure function of its arguments: one `random.Random(seed)` makes
every choice. It first picks one to three target cells (fault x phase x kind x priority) among the
reachable ones, weighted by 1 / (1 + runs so far)^2, so unreached cells come first, then builds the steps
that can reach them:
- a `move` cell: a move of a shard with the fault keyed to the phase (or, for `between`, a fault step after it);
- a `replicate` cell with priority `none`: a replica dropped, then replicated back with the fault;
- a `replica` or `snapshot` cell: a snapshot taken, more writes, then recovered with that priority, the
  fault keyed to the re-sync transfers the recovery causes (these schedules move no replica, so the
  priority oracle judges them).
Around the targets it adds what swarm testing adds: other transfers, snapshots, corrupted uploads, node
restarts, a collection created by a step, faults between transfers and faults keyed to times, several
collections and vector kinds, writers, overwriters, deleters and readers. Whatever it builds is checked
by `schedule_normalize`; a step that would make it invalid is left out.
"""

from __future__ import annotations

import random
import re
from typing import Any

from cluster.explore.coverage import Cell, CoverageMap, cells_reachable
from cluster.explore.schedule import (
    FORMAT,
    LINKS,
    NETWORK_FAULTS,
    SIDED_FAULTS,
    VIAS,
    ScheduleError,
    schedule_normalize,
)

STEPS_MIN, STEPS_MAX = 3, 10
LEAST_REACHED_SHARE = 0.8
TARGETS_PREFIX = "targets: "
QUEUE_PHASES = ("restored", "partial", "finished")  # phases after the stream, while updates are queued
POINT_BYTES = 110  # about what one point of 8 floats and a small payload weighs in a snapshot stream


def cells_targeted(rng: random.Random, coverage: CoverageMap | None, count: int) -> list[Cell]:
    """Mostly (`LEAST_REACHED_SHARE`) a cell among the least reached, else one weighted by 1 / (1 + runs)^2. A
    cell targeted again and again without being reached counts a little as reached, so that a cell this
    build cannot reach does not hold the search."""
    cells = cells_reachable()
    counts = [coverage.effort_of(cell) if coverage else 0.0 for cell in cells]
    least = min(counts)
    rarest = [cell for cell, count in zip(cells, counts, strict=True) if count == least]
    weights = [1.0 / (1 + count) ** 2 for count in counts]
    return [rng.choice(rarest) if rng.random() < LEAST_REACHED_SHARE else rng.choices(cells, weights)[0]
            for _ in range(count)]


def schedule_targets(schedule: dict[str, Any]) -> list[Cell]:
    """The cells a generated schedule was built to reach (from its note)."""
    note = str(schedule.get("note") or "")
    if not note.startswith(TARGETS_PREFIX):
        return []
    return [tuple(text.split("/")) for text in note[len(TARGETS_PREFIX):].split(", ") if text.count("/") == 3]  # type: ignore[misc]


def fault_for(rng: random.Random, kind: str, phase: str) -> dict[str, Any]:
    fault: dict[str, Any] = {"kind": kind, "phase": phase, "delay_ms": rng.choice([0, 0, 50, 150, 300]),
                             "duration_ms": rng.choice([300, 800, 1500, 2500, 4000, 6000])}
    if phase == "mid_stream":
        fault["fraction"] = round(rng.uniform(0.1, 0.9), 2)
    if kind in NETWORK_FAULTS:
        fault["on"] = rng.choices(LINKS, [6, 2, 1, 1])[0]
        fault["amount"] = {"latency": rng.choice([50, 200, 800]), "bandwidth": rng.choice([10, 50, 200]),
                           "timeout": rng.choice([0, 300, 2000]), "reset_peer": rng.choice([0, 100]),
                           "limit_data": rng.choice([1024, 16_384, 65_536]),
                           "slicer": rng.choice([16, 64, 512])}.get(kind)
    elif kind in SIDED_FAULTS:
        fault["on"] = rng.choice(["source", "target", "target"])
    if kind.startswith("kill_") or kind == "broker_outage":
        fault["duration_ms"] = rng.choice([200, 800, 1500, 3000])
    return fault


class Builder:
    """Accumulates steps while keeping the replica counts and labels valid."""

    def __init__(self, rng: random.Random, nodes: int, collections: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.nodes = nodes
        self.collections = collections
        self.steps: list[dict[str, Any]] = []
        self.labels = 0

    def main(self) -> dict[str, Any]:
        return self.collections[0]

    def shard(self) -> int:
        return self.rng.randrange(self.main()["shards"])

    def transfer(self, kind: str, faults: list[dict[str, Any]], between: dict[str, Any] | None = None) -> None:
        collection = self.main()
        stream_kb_s = None
        # a slower stream gives a fault in the middle something to cut, and one keyed to a later phase
        # queued updates to lose: the states where a transfer's bugs live (swarm testing's point)
        late = any(f.get("phase") in QUEUE_PHASES for f in faults)
        if any(f.get("phase") == "mid_stream" for f in faults) or self.rng.random() < (0.6 if late else 0.15):
            stream_kb_s = self.rng.choice([20, 40, 80])
        step: dict[str, Any] = {"op": kind, "collection": collection["name"], "shard": self.shard(),
                                "source": self.rng.randrange(3), "target": self.rng.randrange(3),
                                "faults": faults, "stream_kb_s": stream_kb_s}
        if self.rng.random() < 0.1:
            step["abort_at"] = self.rng.choice(["before_stream", "restored", "partial"])
        if kind == "replicate":
            self.steps.append({"op": "drop", "collection": collection["name"], "shard": step["shard"],
                               "replica": self.rng.randrange(3)})
        self.steps.append(step)
        if between is not None:
            self.steps.append({"op": "fault", "fault": between})

    def recovery(self, priority: str | None, faults: list[dict[str, Any]], corrupt: str | None = None,
                 between: dict[str, Any] | None = None) -> None:
        collection = self.main()
        self.labels += 1
        label = f"s{self.labels}"
        shard = None if self.rng.random() < 0.3 else self.shard()
        self.steps.append({"op": "snapshot", "label": label, "collection": collection["name"], "shard": shard,
                           "node": self.rng.randrange(3)})
        if self.rng.random() < 0.5:
            self.steps.append({"op": "wait", "ms": self.rng.choice([200, 500, 1000])})
        via = "upload" if corrupt else self.rng.choice(VIAS)
        self.steps.append({"op": "recover", "label": label, "node": self.rng.randrange(3), "via": via,
                           "priority": priority, "corrupt": corrupt, "faults": faults})
        if between is not None:
            self.steps.append({"op": "fault", "fault": between})


def shape_draw(rng: random.Random, targets: list[Cell]) -> tuple[int, list[dict[str, Any]]]:
    nodes = rng.choices([2, 3, 4], [1, 8, 1])[0]
    if any(fault == "kill_other" or fault.endswith("_other") for fault, *_ in targets):
        nodes = max(nodes, 3)
    needs_two = any(kind == "replicate" for _f, _p, kind, _c in targets)
    low = 2 if needs_two else 1
    factor = rng.randint(low, max(low, nodes - 1))
    main = {"name": "c", "shards": rng.choices([1, 2, 3], [3, 4, 1])[0], "replication_factor": factor,
            "vectors": rng.choices(["dense", "named", "sparse"], [6, 1, 1])[0],
            "vector_size": rng.choice([4, 8, 16])}
    collections = [main]
    if rng.random() < 0.1:
        collections.append({"name": "d", "shards": 1, "replication_factor": 1, "created": "step",
                            "vectors": rng.choice(["dense", "named", "sparse"])})
    return nodes, collections


def schedule_generate(seed: int, coverage: CoverageMap | None = None, size: int | None = None) -> dict[str, Any]:
    """The schedule of `seed` (a pure function of the seed and the coverage so far)."""
    rng = random.Random(seed)
    targets = cells_targeted(rng, coverage, rng.choice([1, 1, 2, 3]))
    recovering = targets[0][3] in ("replica", "snapshot")
    targets = [t for t in targets if (t[3] in ("replica", "snapshot")) == recovering]
    nodes, collections = shape_draw(rng, targets)
    if recovering:
        collections[0]["replication_factor"] = max(2, collections[0]["replication_factor"])
        nodes = max(nodes, collections[0]["replication_factor"])
    builder = Builder(rng, nodes, collections)
    for fault_kind, phase, kind, priority in targets:
        keyed = [] if phase == "between" else [fault_for(rng, fault_kind, phase)]
        between = fault_for(rng, fault_kind, "between") if phase == "between" else None
        if recovering:
            builder.recovery(priority, keyed, between=between)
        else:
            builder.transfer(kind, keyed, between)
    extras_add(builder, rng, recovering, size)
    for made in (c for c in collections if c.get("created") == "step"):
        builder.steps.insert(rng.randrange(len(builder.steps) + 1), {"op": "create_collection",
                                                                     "collection": made["name"]})
    workload = {"load": rng.choice([100, 200, 400, 800]), "writers": rng.choice([1, 1, 2]),
                "batch": rng.choice([1, 3, 5]), "interval_ms": rng.choice([100, 200, 300]),
                "overwrites": rng.random() < 0.4, "deletes": rng.random() < 0.2, "reads": rng.random() < 0.2}
    timed = [fault_for(rng, rng.choice(["latency", "bandwidth", "kill_target", "pause_source", "partition",
                                        "link_down", "coordinator_restart", "broker_outage"]), "between")
             for _ in range(rng.choice([0, 0, 0, 1, 2]))]
    for fault in timed:
        fault.pop("phase")
        fault["at_ms"] = rng.randrange(0, 6000, 100)
    document = {"format": FORMAT, "name": f"explore-{seed}", "seed": seed, "nodes": nodes,
                "default_priority": rng.choices(["replica", "snapshot"], [4, 1])[0], "collections": collections,
                "workload": workload, "steps": builder.steps, "timed_faults": timed,
                "note": TARGETS_PREFIX + ", ".join("/".join(t) for t in targets)}
    return schedule_valid_part(document)


def extras_add(builder: Builder, rng: random.Random, recovering: bool, size: int | None) -> None:
    wanted = size if size is not None else rng.randint(STEPS_MIN, STEPS_MAX)
    tries = 0
    while len(builder.steps) < wanted and tries < 40:
        tries += 1
        choice = rng.choices(["transfer", "snapshot", "corrupt", "restart", "wait", "between"],
                             [0 if recovering else 5, 1, 1, 1, 1, 1])[0]
        if choice == "transfer":
            builder.transfer(rng.choice(["move", "replicate"]), [])
        elif choice == "snapshot":
            builder.labels += 1
            builder.steps.append({"op": "snapshot", "label": f"s{builder.labels}",
                                  "collection": builder.main()["name"],
                                  "shard": rng.choice([None, builder.shard()]), "node": rng.randrange(3)})
        elif choice == "corrupt":
            builder.recovery(rng.choice(["snapshot", "replica", None]), [], corrupt=rng.choice(["bytes", "checksum"]))
        elif choice == "restart":
            builder.steps.append({"op": "restart", "node": rng.randrange(builder.nodes)})
        elif choice == "wait":
            builder.steps.append({"op": "wait", "ms": rng.choice([100, 500, 1500])})
        else:
            kind = rng.choice(["latency", "partition", "kill_source", "pause_target", "link_down", "isolation"])
            builder.steps.append({"op": "fault", "fault": fault_for(rng, kind, "between")})


def schedule_valid_part(document: dict[str, Any]) -> dict[str, Any]:
    """The document normalized; steps that make it invalid are left out (from the last one back)."""
    for _ in range(2 * len(document["steps"]) + 2):
        try:
            return schedule_normalize(document)
        except ScheduleError as error:
            problem = str(error)
        made = [c["name"] for c in document["collections"] if c.get("created") == "step"]
        if made and not any(s.get("op") == "create_collection" for s in document["steps"]):
            document["collections"] = [c for c in document["collections"] if c["name"] not in made]
            continue
        if not document["steps"]:
            break
        found = re.match(r"schedule\.steps\[(\d+)\]", problem)
        if found is not None:
            del document["steps"][int(found.group(1))]
        elif "replicas" in problem and any(s.get("op") == "drop" for s in document["steps"]):
            last = max(i for i, s in enumerate(document["steps"]) if s.get("op") == "drop")
            del document["steps"][last]
        else:
            document["steps"] = document["steps"][:-1]
    document["steps"] = []
    return schedule_normalize(document)
