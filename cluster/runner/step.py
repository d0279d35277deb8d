"""Step mode (`shardsim run --step`): pause before each decision of the coordinator and explain it.

The coordinator, with `step` on, holds every change that makes decisions and publishes
`decision.pending` (the rule about to fire and its sentence). This controller folds every event into a
`ClusterView`, and for each pending decision prints the cluster as it stands and the rule, then waits for
Enter (or `--step-delay-s`) before telling the coordinator to go on (`POST /internal/step/continue`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from cluster.events.view import ClusterView
from cluster.runner.events import Event


class StepController:
    def __init__(self, delay_s: float | None, queue_size: int = 1000) -> None:
        self.delay_s = delay_s
        self.view = ClusterView()
        self.pending: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self.coordinator_url: str | None = None
        self.headers: dict[str, str] = {}  # the cluster's API key, once the cluster runs
        self.steps = 0

    def on_event(self, event: Event) -> None:
        if event.get("kind") == "decision.pending":
            try:
                self.pending.put_nowait(event)
            except asyncio.QueueFull:
                pass  # the coordinator waits for one answer at a time; a full queue means a bug upstream
        else:
            self.view.apply(event)

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            event = await self.pending.get()
            self.steps += 1
            print(self.screen(event), flush=True)
            if self.delay_s is not None:
                await asyncio.sleep(self.delay_s)
            else:
                print("press Enter to let the coordinator go on ...", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
            if self.coordinator_url is not None:
                async with session.post(f"{self.coordinator_url}/internal/step/continue", headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=5)):
                    pass

    def screen(self, event: Event) -> str:
        lines = [f"\n=== step {self.steps}: the coordinator is about to decide ===", self.view.render()]
        for decision in event.get("decisions", []):
            lines.append(rule_line(decision))
        return "\n".join(lines)


def rule_line(decision: dict[str, Any]) -> str:
    before, after = decision.get("from") or "(none)", decision.get("to") or "(removed)"
    return (f"  rule {decision.get('rule')}: shard {decision.get('shard')} on peer {decision.get('peer')}: "
            f"{before} -> {after}\n    because {decision.get('explanation')}")
