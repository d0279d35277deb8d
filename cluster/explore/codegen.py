"""From a schedule to a scenario file: readable Python on the `Scenario` API, and the Scenario it defines.

There is one translation, and it is this source text: `scenario_from_schedule` compiles exactly what
`scenario_source` writes to `scenarios/found/NAME.py`, so a replayed schedule and its scenario file run the
same code. The plan calls the steps library (`cluster.explore.steps.Explore`) one step per line, with
the faults as `Fault(...)` literals; the module docstring tells the steps in words and how to replay them.
Everything taken from the schedule is validated first (`schedule_normalize`) and written with `repr`, so
no text of a schedule becomes code.
"""

from __future__ import annotations

import textwrap
import types
from pathlib import Path
from typing import Any

from cluster.explore.faults import Fault
from cluster.explore.schedule import FAULT_DEFAULTS, schedule_checkers, schedule_normalize
from cluster.runner.scenario import Scenario

GRACE_S = 45.0
DOC_WIDTH = 108
FAULT_WORDS = {
    "latency": "latency on the {on} link", "bandwidth": "a bandwidth limit on the {on} link",
    "link_down": "the {on} link down", "timeout": "a timeout toxic on the {on} link",
    "reset_peer": "connection resets on the {on} link", "limit_data": "the {on} link cut after some bytes",
    "slicer": "sliced packets on the {on} link", "partition": "the {on} partitioned from the rest",
    "isolation": "the {on} isolated", "kill_source": "kill -9 of the source", "kill_target": "kill -9 of the target",
    "kill_other": "kill -9 of another node", "pause_source": "a pause (SIGSTOP) of the source",
    "pause_target": "a pause (SIGSTOP) of the target", "coordinator_restart": "a coordinator restart",
    "broker_outage": "a broker outage",
}


def fault_source(fault: dict[str, Any]) -> str:
    """`Fault("kill_target", "restored", delay_ms=100)`: the fields that differ from the defaults."""
    args = [repr(fault["kind"])]
    if fault.get("phase") is not None:
        args.append(repr(fault["phase"]))
    for key in ("at_ms", "fraction", "delay_ms", "duration_ms", "on", "amount"):
        value = fault.get(key)
        default = Fault.__dataclass_fields__[key].default
        if key == "at_ms" and value is not None or key != "at_ms" and value != default and value is not None:
            args.append(f"{key}={value!r}")
    return f"Fault({', '.join(args)})"


def faults_source(faults: list[dict[str, Any]], indent: str) -> str:
    if len(faults) == 1:
        return f"[{fault_source(faults[0])}]"
    inner = "".join(f"\n{indent}    {fault_source(f)}," for f in faults)
    return f"[{inner}\n{indent}]"


def call_source(method: str, positional: list[Any], keywords: dict[str, Any], indent: str) -> str:
    args = [repr(value) for value in positional]
    for key, value in keywords.items():
        if key == "faults":
            if value:
                args.append(f"faults={faults_source(value, indent)}")
        elif value is not None:
            args.append(f"{key}={value!r}")
    return f"await run.{method}({', '.join(args)})"


def step_source(step: dict[str, Any], indent: str) -> str:
    op = step["op"]
    if op in ("move", "replicate"):
        return call_source(op, [step["collection"]], {"shard": step["shard"], "source": step["source"],
                           "target": step["target"], "faults": step["faults"], "abort_at": step["abort_at"],
                           "stream_kb_s": step["stream_kb_s"]}, indent)
    if op == "drop":
        return call_source("drop", [step["collection"]], {"shard": step["shard"], "replica": step["replica"]}, indent)
    if op == "snapshot":
        return call_source("snapshot", [step["label"], step["collection"]], {"shard": step["shard"],
                           "node": step["node"]}, indent)
    if op == "recover":
        return call_source("recover", [step["label"]], {"node": step["node"], "via": step["via"],
                           "priority": step["priority"], "corrupt": step["corrupt"], "faults": step["faults"]},
                           indent)
    if op == "restart":
        return call_source("restart", [step["node"]], {}, indent)
    if op == "create_collection":
        return call_source("create_collection", [step["collection"]], {}, indent)
    if op == "fault":
        return f"await run.fault({fault_source(step['fault'])})"
    assert op == "wait", op
    return call_source("wait", [step["ms"]], {}, indent)


def fault_words(fault: dict[str, Any]) -> str:
    words = FAULT_WORDS[fault["kind"]].format(on=fault.get("on") or "")
    if fault.get("at_ms") is not None:
        when = f"{fault['at_ms']} ms into the workload"
    elif fault.get("phase") == "between":
        when = "between transfers"
    elif fault.get("phase") == "mid_stream":
        when = f"at {round(100 * fault['fraction'])} % of the stream"
    else:
        when = f"at `{fault['phase']}`"
    return f"{words} {when}, healed after {fault['duration_ms']} ms"


def step_words(step: dict[str, Any]) -> str:
    op = step["op"]
    if op in ("move", "replicate"):
        text = (f"{op} shard {step['shard']} of {step['collection']} (Active holder #{step['source']} -> "
                f"free peer #{step['target']})")
        extras = [fault_words(f) for f in step["faults"]]
        if step["abort_at"]:
            extras.append(f"the user aborts it at `{step['abort_at']}`")
        return text + (": " + "; ".join(extras) if extras else "")
    if op == "drop":
        return f"drop replica #{step['replica']} of shard {step['shard']} of {step['collection']}"
    if op == "snapshot":
        what = "collection" if step["shard"] is None else f"shard {step['shard']}"
        return f"take a {what} snapshot of {step['collection']} as `{step['label']}`"
    if op == "recover":
        text = (f"recover `{step['label']}` via {step['via']} with priority {step['priority'] or 'default'}"
                + (f", {step['corrupt']} corrupted on purpose" if step["corrupt"] else ""))
        extras = [fault_words(f) + " (of the re-sync)" for f in step["faults"]]
        return text + (": " + "; ".join(extras) if extras else "")
    if op == "restart":
        return f"restart node #{step['node']} (kill -9, same data)"
    if op == "create_collection":
        return f"create collection {step['collection']}"
    if op == "fault":
        return fault_words(step["fault"])
    return f"wait {step['ms']} ms"


def docstring(schedule: dict[str, Any], title: str | None, path_hint: str) -> str:
    workload = schedule["workload"]
    clients = [f"{workload['writers']} writer(s) of {workload['batch']} points every ~{workload['interval_ms']} ms"]
    clients += [name for name in ("overwrites", "deletes", "reads") if workload[name]]
    collections = "; ".join(f"{c['name']}: {c['shards']} shard(s), replication factor {c['replication_factor']}, "
                            f"{c['vectors']} vectors" + (" (created by a step)" if c["created"] == "step" else "")
                            for c in schedule["collections"])
    lines = [title or f"Explored schedule {schedule['name']} (seed {schedule['seed']}).", "",
             f"{schedule['nodes']} nodes; {collections}. {workload['load']} points loaded, then "
             f"{', '.join(clients)} while the steps run:"]
    lines += [f"{index}. {step_words(step)}" for index, step in enumerate(schedule["steps"], start=1)]
    lines += [f"- timed: {fault_words(f)}" for f in schedule["timed_faults"]]
    if schedule.get("note"):
        lines += ["", schedule["note"]]
    lines = [wrapped for line in lines for wrapped in (textwrap.wrap(line, DOC_WIDTH, subsequent_indent=(
        "   " if line[:1].isdigit() or line.startswith("- ") else "")) if line.strip() else [""])]
    lines += ["", f"Schedule format 1 ({path_hint}.json). Replay either of:",
              f"    shardsim replay {path_hint}.json [--sim]",
              f"    shardsim run {path_hint}.py --seed {schedule['seed']} [--sim]"]
    return "\n".join(lines)


def timeout_s_of(schedule: dict[str, Any]) -> float:
    """A bound on the plan that a healthy cluster never reaches: a chaotic step's bounded waits, summed."""
    per_step = {"move": 240, "replicate": 240, "recover": 180, "drop": 120, "snapshot": 90, "restart": 60,
                "create_collection": 150, "fault": 60, "wait": 0}
    total = 120.0 + sum(per_step[s["op"]] + s.get("ms", 0) / 1000 for s in schedule["steps"])
    timed = [f["at_ms"] + f["duration_ms"] for f in schedule["timed_faults"]]
    return total + max(timed, default=0) / 1000


def scenario_source(schedule: dict[str, Any], title: str | None = None, path_hint: str | None = None) -> str:
    """The scenario file of a schedule (validated first)."""
    schedule = schedule_normalize(schedule)
    hint = path_hint or f"scenarios/found/{schedule['name']}"
    workload = schedule["workload"]
    indent = " " * 8
    body = ["    run = Explore(ctx)", f"    await run.load({workload['collection']!r}, {workload['load']})"]
    options = ", ".join(f"{k}={workload[k]!r}" for k in ("writers", "batch", "interval_ms", "overwrites",
                                                          "deletes", "reads"))
    opening = f"    async with run.workload({workload['collection']!r}, {options})"
    if schedule["timed_faults"]:
        opening += f", \\\n            run.timed_faults({faults_source(schedule['timed_faults'], indent)})"
    body.append(opening + ":")
    steps = [f"{indent}{step_source(step, indent)}" for step in schedule["steps"]] or [f"{indent}await run.settle()"]
    body += steps
    collections = ",\n".join(
        f"        {c['name']!r}: ExploreCollection(shard_number={c['shards']}, replication_factor="
        f"{c['replication_factor']}, vector_size={c['vector_size']}, vectors={c['vectors']!r}"
        + (", created_in_setup=False" if c["created"] == "step" else "") + ")"
        for c in schedule["collections"])
    text = docstring(schedule, title, hint).replace('"""', "'''")
    return f'''"""{text}
"""

from cluster.explore.faults import Fault
from cluster.explore.steps import Explore, ExploreCollection
from cluster.runner import RunContext, Scenario


async def plan(ctx: RunContext) -> None:
{chr(10).join(body)}


SCENARIO = Scenario(
    name={schedule['name']!r},
    description=__doc__ or "",
    plan=plan,
    nodes={schedule['nodes']},
    collections={{
{collections},
    }},
    checkers={schedule_checkers(schedule)!r},
    default_priority={schedule['default_priority']!r},
    grace_s={GRACE_S!r},
    timeout_s={timeout_s_of(schedule)!r},
)
'''


def scenario_from_schedule(schedule: dict[str, Any], path: Path | None = None) -> Scenario:
    """The Scenario of a schedule: its scenario file's source, compiled and run as a module."""
    source = scenario_source(schedule)
    name = schedule_normalize(schedule)["name"]
    module = types.ModuleType(f"shardsim_schedule_{name.replace('-', '_')}")
    module.__file__ = str(path or f"<schedule {name}>")
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own generated text, see above
    scenario: Scenario = module.SCENARIO
    scenario.path = path
    return scenario


assert set(FAULT_DEFAULTS) == set(Fault.__dataclass_fields__) - {"kind"}, "Fault and the schedule disagree"
