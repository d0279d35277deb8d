"""The explorer's faults: what each kind does to which peer or link, and how a transfer phase is made wide
enough for a fault to land in it.

A `Fault` names its kind (schedule.FAULTS) and, for a transfer's faults, the phase it is keyed to. Its
victim is a role (`Roles`: the transfer's source and target, and the other nodes), resolved when it fires.
Every fault goes through the nemesis, so every one is published as `fault.applied` / `fault.healed` with
its real target; the coverage map judges from those events, not from what was planned. A coordinator
restart, which the launcher does alone, is published here the same way.

Phases are keyed with the runner's predicates (`at_phase`, `at_stream_fraction`) and widened with the
coordinator setting `transfer_phase_pause_s`, which holds a transfer after a phase:
`before_stream` after `queue_installed`, `restored` after the target restored (not yet Partial),
`partial` while the queued updates are replayed (the restore pause lets updates queue first),
`mid_stream` at a fraction of the stream (slowed by `stream_kb_s`), `finished` at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cluster.runner.context import RunContext
from cluster.runner.events import Event, Predicate, at_phase, at_stream_fraction
from node import clock

PHASE_PAUSE_S = 0.5
PHASE_PAUSES: dict[str, dict[str, float]] = {
    "before_stream": {"queue_installed": PHASE_PAUSE_S},
    "mid_stream": {},
    "restored": {"restored": PHASE_PAUSE_S},
    "partial": {"restored": PHASE_PAUSE_S, "queue_replayed": PHASE_PAUSE_S},
    "finished": {},
}
PHASE_EVENTS = {"before_stream": "queue_installed", "restored": "restored", "partial": "partial",
                "finished": "finished"}
COORDINATOR_LINK_END = "coord"


class FaultSkipped(Exception):
    """The fault cannot be applied here (no such peer, or this build cannot do it); nothing was changed."""


@dataclass(frozen=True)
class Fault:
    """One fault of a schedule, as a scenario file writes it: `Fault("kill_target", "restored",
    delay_ms=100, duration_ms=1500)`; `at_ms` instead of a phase for a fault keyed to a time."""

    kind: str
    phase: str | None = None
    at_ms: int | None = None
    fraction: float = 0.5
    delay_ms: int = 0
    duration_ms: int = 1000
    on: str | None = None
    amount: int | None = None

    @staticmethod
    def of(data: dict[str, Any]) -> Fault:
        return Fault(**{k: data[k] for k in Fault.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Roles:
    """The peers a fault can hit, by name: a transfer's source and target, and the other nodes."""

    source: str
    target: str
    others: tuple[str, ...] = field(default_factory=tuple)

    def side(self, which: str) -> str:
        if which == "source":
            return self.source
        if which == "target":
            return self.target
        if not self.others:
            raise FaultSkipped("no node other than the source and the target")
        return self.others[0]


def phase_pauses(phases: list[str]) -> dict[str, float]:
    """The `transfer_phase_pause_s` setting that widens every phase in `phases`."""
    pauses: dict[str, float] = {}
    for phase in phases:
        pauses.update(PHASE_PAUSES.get(phase, {}))
    return pauses


def phase_predicate(phase: str, fraction: float, matches: Callable[[Event], bool]) -> Predicate:
    """An event that puts a transfer `matches` accepts in `phase`."""
    inner = at_stream_fraction(fraction) if phase == "mid_stream" else at_phase(PHASE_EVENTS[phase])

    def when(event: Event) -> bool:
        return inner(event) and matches(event)
    return when


def link_ends(on: str, roles: Roles) -> tuple[str, str]:
    """The directed proxy link a network fault acts on: `stream` is target->source (the target pulls the
    snapshot), `replay` source->target (queued updates), `coord_*` the coordinator's link to a peer."""
    return {"stream": (roles.target, roles.source), "replay": (roles.source, roles.target),
            "coord_source": (COORDINATOR_LINK_END, roles.source),
            "coord_target": (COORDINATOR_LINK_END, roles.target)}[on]


Heal = Callable[[], Awaitable[None]]
_coordinator_faults = itertools.count(1)


async def fault_apply(ctx: RunContext, fault: Fault, roles: Roles) -> Heal:
    """Apply `fault` now to the peers of `roles`; returns what heals it. FaultSkipped if it cannot apply."""
    nemesis, kind = ctx.nemesis, fault.kind
    amount = int(fault.amount or 0)
    if kind in ("latency", "bandwidth", "link_down", "timeout", "reset_peer", "limit_data", "slicer"):
        a, b = link_ends(fault.on or "stream", roles)
        if kind == "latency":
            handle = await nemesis.latency(a, b, ms=amount)
        elif kind == "bandwidth":
            handle = await nemesis.bandwidth(a, b, kb_s=max(amount, 1))
        elif kind == "link_down":
            handle = await nemesis.link_down(a, b)
        elif kind == "timeout":
            handle = await nemesis.timeout(a, b, timeout_ms=amount)
        elif kind == "reset_peer":
            handle = await nemesis.reset(a, b, timeout_ms=amount)
        elif kind == "limit_data":
            handle = await nemesis.cut_after(a, b, bytes_count=max(amount, 1))
        else:
            handle = await nemesis.slice(a, b, average_size=max(amount, 1), size_variation=max(amount, 1) // 2)
        return handle.heal
    if kind == "partition":
        victim = roles.side(fault.on or "target")
        rest = [name for name in ctx.cluster.node_names() if name != victim]
        return (await nemesis.partition([[victim], rest])).heal
    if kind == "isolation":
        return (await nemesis.isolate(roles.side(fault.on or "target"))).heal
    if kind.startswith("kill_") or kind.startswith("pause_"):
        action, _, side = kind.partition("_")
        victim = roles.side(side)
        handle = await (nemesis.node_kill(victim) if action == "kill" else nemesis.node_pause(victim))
        return handle.heal
    if kind == "coordinator_restart":
        return await coordinator_restart(ctx)
    if kind == "broker_outage":
        return await broker_outage(ctx)
    raise FaultSkipped(f"unknown fault {kind!r}")


async def coordinator_restart(ctx: RunContext) -> Heal:
    """kill -9 the coordinator and start it again on its SQLite file, published as a fault like the others."""
    fault_id = f"coordinator_restart-x{next(_coordinator_faults)}"
    events = ctx.nemesis.events
    if events is not None:
        events.publish("fault.applied", fault_id=fault_id, fault="coordinator_restart", target="coordinator",
                       params={})
    await ctx.cluster.coordinator_restart()
    if events is not None:
        events.publish("fault.healed", fault_id=fault_id, fault="coordinator_restart", target="coordinator",
                       params={})

    async def nothing() -> None:
        return None
    return nothing


async def broker_outage(ctx: RunContext) -> Heal:
    """Stop the event bus's broker. Its own `fault.*` events travel on the bus that is down and are often
    lost (with the events other processes published meanwhile), so the runner also writes them into the
    history itself: the checkers and the coverage map must know the history has a hole."""
    outage = getattr(ctx.nemesis, "broker_outage", None)
    if outage is None:
        raise FaultSkipped("this build's nemesis has no broker outage")
    handle = await outage()

    def record(kind: str) -> None:
        ctx.history.event({"ts": clock.now(), "source": "runner", "kind": kind, "fault_id": handle.fault_id,
                           "fault": "broker_outage", "target": "broker", "params": {"recorded_by": "runner"}})
    record("fault.applied")

    async def heal() -> None:
        await handle.heal()
        record("fault.healed")
    return heal
