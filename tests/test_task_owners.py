"""Every background task in `node/` and `cluster/` has an owner that cancels and awaits it (STYLE: trio).

A task is started only by `create_task` on an `asyncio.TaskGroup` (a name the module binds to one: `async
with asyncio.TaskGroup() as tasks`, `x = ... asyncio.TaskGroup() ...`, or a name annotated `TaskGroup`).
`asyncio.ensure_future`, `asyncio.create_task` and a loop's `create_task` start tasks nobody awaits; the
only exceptions are listed in `OWNED_ELSEWHERE` with the object that owns their tasks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("node", "cluster")
OWNED_ELSEWHERE = {
    # a proxy's link tasks start in a protocol callback; the Proxy tracks them and `stop` cancels and awaits
    # them (cluster/proxy/proxy.py `_tasks_wait`)
    ("cluster/proxy/proxy.py", "asyncio.get_running_loop().create_task"),
    # a simulated host's main task (its process): the SimProcess that started it stops it (cancels and awaits
    # it) or kills it, and `SimEngine.run` awaits the runner's (cluster/sim/hosts.py, cluster/sim/engine.py)
    ("cluster/sim/engine.py", "self.net.host(name).create_task"),
}


def task_groups(tree: ast.AST) -> set[str]:
    """The expressions (as source text) that the module binds to a TaskGroup."""
    def makes_group(value: ast.AST | None) -> bool:
        return value is not None and any(isinstance(node, ast.Call) and ast.unparse(node.func) in (
            "asyncio.TaskGroup", "TaskGroup") for node in ast.walk(value))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.withitem) and node.optional_vars is not None and makes_group(node.context_expr):
            names.add(ast.unparse(node.optional_vars))
        elif isinstance(node, ast.Assign) and makes_group(node.value):
            names |= {ast.unparse(target) for target in node.targets}
        elif isinstance(node, ast.AnnAssign | ast.arg) and node.annotation is not None and \
                "TaskGroup" in ast.unparse(node.annotation):
            names.add(node.arg if isinstance(node, ast.arg) else ast.unparse(node.target))
    return names


def stray_tasks(source: str, where: str) -> list[str]:
    """Calls that start a task without a TaskGroup owning it, as `where:line: call`."""
    tree = ast.parse(source)
    groups = task_groups(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = ast.unparse(node.func)
        if function.split(".")[-1] not in ("ensure_future", "create_task"):
            continue
        receiver = function.rpartition(".")[0]
        if function.endswith("create_task") and receiver in groups:
            continue
        if (where, function) in OWNED_ELSEWHERE:
            continue
        found.append(f"{where}:{node.lineno}: {function}")
    return found


def test_every_task_is_started_by_an_owner() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += stray_tasks(path.read_text(), str(path.relative_to(ROOT)))
    assert found == []


def test_the_finder_tells_owned_tasks_from_stray_ones() -> None:
    source = """
import asyncio

class Owner:
    def __init__(self, tasks: asyncio.TaskGroup) -> None:
        self.tasks = tasks
        self.group: asyncio.TaskGroup | None = None

    async def run(self, tasks: asyncio.TaskGroup) -> None:
        tasks.create_task(work())
        self.group.create_task(work())
        async with asyncio.TaskGroup() as inner:
            inner.create_task(work())
        asyncio.ensure_future(work())
        asyncio.create_task(work())
        asyncio.get_running_loop().create_task(work())
        self.tasks.create_task(work())
"""
    assert stray_tasks(source, "probe.py") == [
        "probe.py:14: asyncio.ensure_future", "probe.py:15: asyncio.create_task",
        "probe.py:16: asyncio.get_running_loop().create_task", "probe.py:17: self.tasks.create_task"]
