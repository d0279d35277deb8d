"""A schedule: one chaos run as plain, versioned JSON (`"format": 1`), and the rules that make it valid.

A schedule is everything the explorer chose for one run, so it can be stored, read, edited, replayed
(`shardsim replay SCHEDULE.json [--sim]`) and shrunk:

    {"format": 1, "name": "explore-17", "seed": 17, "nodes": 3, "default_priority": "replica",
     "collections": [{"name": "c", "shards": 2, "replication_factor": 2, "vectors": "dense",
                      "vector_size": 8, "created": "setup"}],
     "workload": {"collection": "c", "load": 300, "writers": 2, "batch": 3, "interval_ms": 50,
                  "overwrites": true, "deletes": false, "reads": true},
     "steps": [{"op": "move", "collection": "c", "shard": 0, "source": 0, "target": 0,
                "faults": [{"kind": "kill_target", "phase": "restored", "delay_ms": 100, "duration_ms": 1500}]}],
     "timed_faults": [{"kind": "latency", "at_ms": 800, "on": "stream", "amount": 150, "duration_ms": 2000}]}

Peers are named by role, resolved when the step runs, so a schedule stays meaningful whatever the
placement: a transfer's `source` is an index into the shard's Active holders (ascending peer id), its
`target` an index into the peers without a replica; `drop.replica` and a shard snapshot's or recovery's
`node` index the shard's holders; a collection snapshot's or recovery's `node` and `restart.node` index the
nodes. An index wraps around (modulo), so every integer is valid.

Steps (`op`): `move`, `replicate` (optionally `abort_at` a phase: the user aborts it there), `drop`,
`snapshot` (collection or shard, stored under a `label`), `recover` (the labelled snapshot, `via` url, file
or upload, a `priority` or the default, optionally `corrupt`: `bytes` flipped or a wrong `checksum`),
`restart` (kill -9 and start a node), `create_collection` (a collection with `"created": "step"`),
`fault` (a fault applied between transfers) and `wait`.

Faults: `kind` (FAULTS), keyed to a `phase` of the step's transfer (PHASES; for a recovery, the re-sync
transfer it causes), or to a time `at_ms` after the workload started (`timed_faults`), or applied between
transfers (a `fault` step). `on` says which link (LINKS) or which peer (SIDES) a network fault hits,
`amount` its size (latency ms, bandwidth KB/s, bytes before the cut, timeout ms, slice size), `delay_ms`
how long after the phase it fires, `duration_ms` how long until it is healed (a killed node restarted).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FORMAT = 1

FAULTS = ("latency", "bandwidth", "link_down", "timeout", "reset_peer", "limit_data", "slicer", "partition",
          "isolation", "kill_source", "kill_target", "kill_other", "pause_source", "pause_target",
          "coordinator_restart", "broker_outage")
NETWORK_FAULTS = ("latency", "bandwidth", "link_down", "timeout", "reset_peer", "limit_data", "slicer")
SIDED_FAULTS = ("partition", "isolation")
TRANSFER_PHASES = ("before_stream", "mid_stream", "restored", "partial", "finished")
PHASES = (*TRANSFER_PHASES, "between")
LINKS = ("stream", "replay", "coord_source", "coord_target")  # stream: target->source, replay: source->target
SIDES = ("source", "target", "other")
OPS = ("move", "replicate", "drop", "snapshot", "recover", "restart", "create_collection", "fault", "wait")
TRANSFER_OPS = ("move", "replicate")
VECTORS = ("dense", "named", "sparse")
VIAS = ("url", "file", "upload")
PRIORITIES = ("replica", "snapshot", "no_sync")
CORRUPTIONS = ("bytes", "checksum")
NODES_MIN, NODES_MAX = 2, 5
LIMITS = {"load": (0, 20_000), "writers": (0, 4), "batch": (1, 50), "interval_ms": (5, 2000),
          "delay_ms": (0, 10_000), "duration_ms": (0, 20_000), "at_ms": (0, 60_000), "ms": (0, 20_000),
          "amount": (0, 10_000_000), "stream_kb_s": (20, 100_000), "vector_size": (1, 256)}

FAULT_DEFAULTS = {"phase": None, "at_ms": None, "fraction": 0.5, "delay_ms": 0, "duration_ms": 1000,
                  "on": None, "amount": None}
AMOUNT_DEFAULTS = {"latency": 200, "bandwidth": 100, "timeout": 500, "reset_peer": 0, "limit_data": 4096,
                   "slicer": 64}
WORKLOAD_DEFAULTS = {"load": 200, "writers": 1, "batch": 3, "interval_ms": 50, "overwrites": False,
                     "deletes": False, "reads": False}
COLLECTION_DEFAULTS = {"shards": 1, "replication_factor": 1, "vectors": "dense", "vector_size": 8,
                       "created": "setup"}


class ScheduleError(ValueError):
    """The document is not a valid schedule; the message says which field and why."""


# -- reading and writing ------------------------------------------------------------------------------------

def schedule_load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ScheduleError(f"{path}: cannot read a schedule: {error}") from error
    return schedule_normalize(document)


def schedule_dump(schedule: dict[str, Any]) -> str:
    """The schedule as stable, readable JSON (one step per line)."""
    head = {k: v for k, v in schedule.items() if k not in ("steps", "timed_faults")}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)},")
    for key in ("steps", "timed_faults"):
        items = schedule.get(key, [])
        if not items:
            lines.append(f"  {json.dumps(key)}: [],")
            continue
        lines.append(f"  {json.dumps(key)}: [")
        lines += [f"    {json.dumps(item, sort_keys=True)}," for item in items]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("  ],")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines) + "\n"


def schedule_save(schedule: dict[str, Any], path: Path) -> None:
    Path(path).write_text(schedule_dump(schedule))


# -- validation ---------------------------------------------------------------------------------------------

def _int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{where}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ScheduleError(f"{where}: {value} is outside {low}..{high}")
    return value


def _choice(where: str, value: Any, choices: tuple[Any, ...], optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if value not in choices:
        raise ScheduleError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
    return value


def _keys(where: str, item: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ScheduleError(f"{where}: expected an object, got {item!r}")
    unknown = set(item) - allowed
    if unknown:
        raise ScheduleError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return item


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not value.replace("_", "").replace("-", "").isalnum():
        raise ScheduleError(f"{where}: a name of letters, digits, '-' and '_' is expected, got {value!r}")
    return value


def fault_normalize(where: str, item: Any, timed: bool) -> dict[str, Any]:
    fault = {**FAULT_DEFAULTS, **_keys(where, item, {"kind", *FAULT_DEFAULTS})}
    kind = _choice(f"{where}.kind", fault["kind"], FAULTS)
    if timed:
        fault["phase"] = None
        fault["at_ms"] = _int(f"{where}.at_ms", fault["at_ms"] if fault["at_ms"] is not None else 0,
                              *LIMITS["at_ms"])
    else:
        fault["at_ms"] = None
        fault["phase"] = _choice(f"{where}.phase", fault["phase"], PHASES)
    fraction = fault["fraction"]
    if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction < 1:
        raise ScheduleError(f"{where}.fraction: a number between 0 and 1 is expected, got {fraction!r}")
    fault["fraction"] = round(float(fraction), 3)
    for key in ("delay_ms", "duration_ms"):
        fault[key] = _int(f"{where}.{key}", fault[key], *LIMITS[key])
    if kind in NETWORK_FAULTS:
        fault["on"] = _choice(f"{where}.on", fault["on"] or "stream", LINKS)
    elif kind in SIDED_FAULTS:
        fault["on"] = _choice(f"{where}.on", fault["on"] or "target", SIDES)
    else:
        fault["on"] = None
    if kind in AMOUNT_DEFAULTS:
        amount = AMOUNT_DEFAULTS[kind] if fault["amount"] is None else fault["amount"]
        fault["amount"] = _int(f"{where}.amount", amount, *LIMITS["amount"])
    else:
        fault["amount"] = None
    return fault


STEP_FIELDS: dict[str, set[str]] = {
    "move": {"collection", "shard", "source", "target", "faults", "abort_at", "stream_kb_s"},
    "replicate": {"collection", "shard", "source", "target", "faults", "abort_at", "stream_kb_s"},
    "drop": {"collection", "shard", "replica"},
    "snapshot": {"label", "collection", "shard", "node"},
    "recover": {"label", "node", "via", "priority", "corrupt", "faults"},
    "restart": {"node"},
    "create_collection": {"collection"},
    "fault": {"fault"},
    "wait": {"ms"},
}


def step_normalize(where: str, item: Any, collections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ScheduleError(f"{where}: expected an object, got {item!r}")
    op = _choice(f"{where}.op", item.get("op"), OPS)
    step = dict(_keys(where, item, {"op", *STEP_FIELDS[op]}))
    if "collection" in STEP_FIELDS[op]:
        name = step.get("collection")
        if name not in collections:
            raise ScheduleError(f"{where}.collection: {name!r} is not a collection of the schedule")
    if op in TRANSFER_OPS or op == "drop" or op == "snapshot":
        shard = step.get("shard")
        if op == "snapshot" and shard is None:
            step["shard"] = None
        else:
            step["shard"] = _int(f"{where}.shard", shard if shard is not None else 0, 0,
                                 collections[step["collection"]]["shards"] - 1)
    if op in TRANSFER_OPS:
        step["source"] = _int(f"{where}.source", step.get("source", 0), 0, 64)
        step["target"] = _int(f"{where}.target", step.get("target", 0), 0, 64)
        step["abort_at"] = _choice(f"{where}.abort_at", step.get("abort_at"), TRANSFER_PHASES, optional=True)
        kb_s = step.get("stream_kb_s")
        step["stream_kb_s"] = None if kb_s is None else _int(f"{where}.stream_kb_s", kb_s, *LIMITS["stream_kb_s"])
    if op in (*TRANSFER_OPS, "recover"):
        faults = step.get("faults", [])
        if not isinstance(faults, list):
            raise ScheduleError(f"{where}.faults: expected a list")
        step["faults"] = [fault_normalize(f"{where}.faults[{i}]", f, timed=False) for i, f in enumerate(faults)]
        for index, fault in enumerate(step["faults"]):
            if fault["phase"] == "between":
                raise ScheduleError(f"{where}.faults[{index}].phase: `between` belongs to a `fault` step")
    if op == "drop":
        step["replica"] = _int(f"{where}.replica", step.get("replica", 0), 0, 64)
    if op in ("snapshot", "recover"):
        step["label"] = _name(f"{where}.label", step.get("label"))
        step["node"] = _int(f"{where}.node", step.get("node", 0), 0, 64)
    if op == "recover":
        step["via"] = _choice(f"{where}.via", step.get("via", "url"), VIAS)
        step["priority"] = _choice(f"{where}.priority", step.get("priority"), PRIORITIES, optional=True)
        step["corrupt"] = _choice(f"{where}.corrupt", step.get("corrupt"), CORRUPTIONS, optional=True)
        if step["corrupt"] is not None and step["via"] != "upload":
            raise ScheduleError(f"{where}.corrupt: a corrupted snapshot is recovered by upload (`via`: upload)")
    if op == "restart":
        step["node"] = _int(f"{where}.node", step.get("node", 0), 0, 64)
    if op == "fault":
        step["fault"] = fault_normalize(f"{where}.fault", {"phase": "between", **(step.get("fault") or {})},
                                        timed=False)
        if step["fault"]["phase"] != "between":
            raise ScheduleError(f"{where}.fault.phase: a `fault` step applies its fault between transfers")
    if op == "wait":
        step["ms"] = _int(f"{where}.ms", step.get("ms", 0), *LIMITS["ms"])
    return step


def collection_normalize(where: str, item: Any, nodes: int) -> dict[str, Any]:
    spec = {**COLLECTION_DEFAULTS, **_keys(where, item, {"name", *COLLECTION_DEFAULTS})}
    spec["name"] = _name(f"{where}.name", spec.get("name"))
    spec["shards"] = _int(f"{where}.shards", spec["shards"], 1, 8)
    spec["replication_factor"] = _int(f"{where}.replication_factor", spec["replication_factor"], 1, nodes)
    spec["vectors"] = _choice(f"{where}.vectors", spec["vectors"], VECTORS)
    spec["vector_size"] = _int(f"{where}.vector_size", spec["vector_size"], *LIMITS["vector_size"])
    spec["created"] = _choice(f"{where}.created", spec["created"], ("setup", "step"))
    return spec


def schedule_normalize(document: Any) -> dict[str, Any]:
    """A valid schedule with every default filled in (a new object), or ScheduleError saying what is wrong."""
    top = {"format", "name", "seed", "nodes", "default_priority", "collections", "workload", "steps",
           "timed_faults", "note"}
    document = _keys("schedule", copy.deepcopy(document), top)
    if document.get("format") != FORMAT:
        raise ScheduleError(f"schedule.format: this shardsim reads format {FORMAT}, got {document.get('format')!r}")
    nodes = _int("schedule.nodes", document.get("nodes", 3), NODES_MIN, NODES_MAX)
    raw_collections = document.get("collections") or []
    if not isinstance(raw_collections, list) or not raw_collections:
        raise ScheduleError("schedule.collections: a non-empty list is expected")
    collections: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(raw_collections):
        spec = collection_normalize(f"schedule.collections[{index}]", item, nodes)
        if spec["name"] in collections:
            raise ScheduleError(f"schedule.collections[{index}].name: {spec['name']!r} appears twice")
        collections[spec["name"]] = spec
    first = next(iter(collections.values()))
    if first["created"] != "setup":
        raise ScheduleError("schedule.collections[0].created: the workload's collection is created in setup")
    workload = {**WORKLOAD_DEFAULTS, "collection": first["name"],
                **_keys("schedule.workload", document.get("workload") or {}, {"collection", *WORKLOAD_DEFAULTS})}
    if workload["collection"] not in collections or collections[workload["collection"]]["created"] != "setup":
        raise ScheduleError("schedule.workload.collection: a collection created in setup is expected")
    for key in ("load", "writers", "batch", "interval_ms"):
        workload[key] = _int(f"schedule.workload.{key}", workload[key], *LIMITS[key])
    for key in ("overwrites", "deletes", "reads"):
        workload[key] = bool(workload[key])
    steps = document.get("steps") or []
    timed = document.get("timed_faults") or []
    if not isinstance(steps, list) or not isinstance(timed, list):
        raise ScheduleError("schedule.steps and schedule.timed_faults: lists are expected")
    schedule = {
        "format": FORMAT,
        "name": _name("schedule.name", document.get("name", "schedule")),
        "seed": _int("schedule.seed", document.get("seed", 1), 0, 2**63 - 1),
        "nodes": nodes,
        "default_priority": _choice("schedule.default_priority", document.get("default_priority", "replica"),
                                    ("replica", "snapshot")),
        "collections": list(collections.values()),
        "workload": workload,
        "steps": [step_normalize(f"schedule.steps[{i}]", s, collections) for i, s in enumerate(steps)],
        "timed_faults": [fault_normalize(f"schedule.timed_faults[{i}]", f, timed=True) for i, f in enumerate(timed)],
    }
    if document.get("note"):
        schedule["note"] = str(document["note"])
    problem = schedule_problem(schedule)
    if problem is not None:
        raise ScheduleError(problem)
    return schedule


def schedule_problem(schedule: dict[str, Any]) -> str | None:
    """Why a normalized schedule cannot be run as a fair test, or None. The replica count of every shard must
    stay between 1 and its replication factor and end equal to it (so `replication_factor` and
    `no_extra_replicas` judge it), a move needs a peer without a replica, a snapshot label is defined before
    it is recovered, and a collection made by a step is made before it is used."""
    collections = {c["name"]: c for c in schedule["collections"]}
    created = {name for name, c in collections.items() if c["created"] == "setup"}
    counts = {(name, shard): c["replication_factor"] for name, c in collections.items() for shard in range(c["shards"])}
    labels: set[str] = set()
    for index, step in enumerate(schedule["steps"]):
        where = f"schedule.steps[{index}]"
        op = step["op"]
        name = step.get("collection")
        if name is not None and op != "create_collection" and name not in created:
            return f"{where}: collection {name!r} is used before its create_collection step"
        if op == "create_collection":
            if name in created:
                return f"{where}: collection {name!r} is created twice"
            created.add(name)
        elif op == "move" and counts[(name, step["shard"])] >= schedule["nodes"]:
            return f"{where}: a move needs a peer without a replica of shard {step['shard']}"
        elif op == "replicate":
            counts[(name, step["shard"])] += 1
            if counts[(name, step["shard"])] > collections[name]["replication_factor"]:
                return f"{where}: a replicate adds a replica beyond the replication factor (drop one first)"
        elif op == "drop":
            counts[(name, step["shard"])] -= 1
            if counts[(name, step["shard"])] < 1:
                return f"{where}: a drop would leave shard {step['shard']} of {name} without a replica"
        elif op == "snapshot":
            labels.add(step["label"])
        elif op == "recover" and step["label"] not in labels:
            return f"{where}: snapshot {step['label']!r} is recovered before it is taken"
    for (name, shard), count in counts.items():
        if count != collections[name]["replication_factor"]:
            return f"shard {shard} of {name} ends with {count} replicas, not its replication factor (replicate " \
                   "after a drop)"
    return None


def schedule_valid(schedule: dict[str, Any]) -> bool:
    try:
        schedule_normalize(schedule)
    except ScheduleError:
        return False
    return True


# -- what judges a schedule ---------------------------------------------------------------------------------

def recoveries_real(schedule: dict[str, Any]) -> list[dict[str, Any]]:
    """Recover steps that may replace data (not corrupted on purpose)."""
    return [s for s in schedule["steps"] if s["op"] == "recover" and s["corrupt"] is None]


def schedule_checkers(schedule: dict[str, Any]) -> tuple[str, ...]:
    """Every checker that can judge this schedule fairly (docs/explore.md): writes a snapshot recovery
    overwrites on purpose are not lost writes; the oracle does not model moves and drops."""
    moves = any(s["op"] in (*TRANSFER_OPS, "drop") for s in schedule["steps"])
    recoveries = recoveries_real(schedule)
    checkers = ["replicas_converge", "nothing_stuck", "replication_factor", "no_extra_replicas",
                "transfer_retries"]
    if not recoveries:
        checkers.insert(0, "no_lost_writes")
    if any(s["op"] in ("snapshot", "recover") for s in schedule["steps"]):
        checkers.append("snapshot_integrity")
    if recoveries and not moves and not oracle_unsure(schedule):
        checkers.append("priority_oracle")
    return tuple(checkers)


def oracle_unsure(schedule: dict[str, Any]) -> bool:
    """Schedules the priority oracle cannot judge: a collection made by a step (its placement comes after
    the first recovery, docs/checkers.md section 3), or a collection snapshot recovered where a peer may
    hold no replica of some shard (the oracle gives that peer a replica and removes one beyond the factor;
    the node restores only the replicas it holds: an open question, see docs/explore.md)."""
    if any(s["op"] == "create_collection" for s in schedule["steps"]):
        return True
    faults = schedule["timed_faults"] + [f for s in schedule["steps"] for f in s.get("faults", [])] + \
        [s["fault"] for s in schedule["steps"] if s["op"] == "fault"]
    if any(f["kind"] == "broker_outage" for f in faults):
        return True  # the oracle reads replica states from the bus: an outage leaves holes in them
    labels = {s["label"]: s for s in schedule["steps"] if s["op"] == "snapshot"}
    collections = {c["name"]: c for c in schedule["collections"]}
    for step in recoveries_real(schedule):
        snapshot = labels.get(step["label"])
        if snapshot is not None and snapshot["shard"] is None and \
                collections[snapshot["collection"]]["replication_factor"] < schedule["nodes"]:
            return True
    return False


def schedule_size(schedule: dict[str, Any]) -> tuple[int, ...]:
    """How big a schedule is, compared lexicographically by the shrinker: faults, steps, nodes, shards,
    workload, then the sum of its numbers."""
    faults = len(schedule["timed_faults"]) + sum(len(s.get("faults", [])) + (s["op"] == "fault")
                                                  for s in schedule["steps"])
    workload = schedule["workload"]
    shards = sum(c["shards"] for c in schedule["collections"])
    load = workload["writers"] + workload["overwrites"] + workload["deletes"] + workload["reads"]

    def numbers(value: Any) -> int:
        if isinstance(value, dict):
            return sum(numbers(v) for k, v in value.items() if k != "seed")
        if isinstance(value, list):
            return sum(numbers(v) for v in value)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    return (faults, len(schedule["steps"]), schedule["nodes"], shards, len(schedule["collections"]), load,
            numbers({k: v for k, v in schedule.items() if k not in ("seed", "format")}))
