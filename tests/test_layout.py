"""The import graph of `node/` and `cluster/` (docs/design.md section 2).

- Dependencies point one way: `node/` never imports `cluster/`, and `cluster/` reaches into `node/` only for
  the pure wire types (`node.protocol`), the event publisher (`node.eventbus`, an MQTT client with no node
  state, shared so that nodes and cluster tools publish the same way), the one way to wait and retry
  (`node.retry`, pure asyncio) and the flags derived from a settings dataclass (`node.settings_args`, pure
  argparse, shared so that the node's and the coordinator's settings read from the command line alike),
  the one clock and random source (`node.clock`, pure, so that a simulation replaces time and randomness of
  every process in one place), the name of the host that logs (`node.logs`, pure, so that hosts sharing
  a process in a simulation tell their log lines apart), and the HTTP rules every shardsim server shares
  (`node.jsonwire`: JSON as serde_json reads and writes it; `node.apikey`: Qdrant's API-key check), pure,
  and the registry of planted bugs (`node.plant`), which the coordinator's rules read as the node does.
- No import cycle, counting imports inside functions (they run too, only later) and the packages whose
  `__init__` an import runs first. Imports under `if TYPE_CHECKING:` never run and are left out.
- No folder holds more than about ten modules, and every package says what it owns in its docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("node", "cluster")
CLUSTER_MAY_IMPORT_FROM_NODE = {"node", "node.protocol", "node.eventbus", "node.retry", "node.settings_args",
                                "node.clock", "node.logs", "node.jsonwire", "node.apikey", "node.plant"}
# a simulation runs the node in its own process, as the launcher runs `python -m node`: its boot module alone
# may import the node's entry points (the app and the settings its command line gives)
SIM_BOOT = "cluster.sim.hosts"
SIM_BOOT_MAY_IMPORT_FROM_NODE = {"node.api", "node.api.app", "node.settings"}
MODULES_PER_FOLDER_MAX = 12  # cluster/checkers: one module per invariant (8), the oracle's model, rules and types, the result


def module_paths() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def type_checking_blocks(tree: ast.AST) -> set[int]:
    """The ids of import nodes that sit under `if TYPE_CHECKING:`."""
    guarded: set[int] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.If) and "TYPE_CHECKING" in ast.unparse(item.test):
            for statement in item.body:
                guarded |= {id(inner) for inner in ast.walk(statement)}
    return guarded


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules `name` imports at run time (module level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = type_checking_blocks(tree)
    found: set[str] = set()
    for item in ast.walk(tree):
        if id(item) in guarded:
            continue
        if isinstance(item, ast.Import):
            found |= {alias.name for alias in item.names}
        elif isinstance(item, ast.ImportFrom) and item.module:
            base = item.module
            if item.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - item.level + 1] + [item.module])
            for alias in item.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return {module for module in found if module in modules and module != name}


def with_packages(name: str, targets: set[str], modules: set[str]) -> set[str]:
    """Importing `a.b.c` first runs the `__init__` of `a` and `a.b`: those are imported too, except the
    packages `name` itself sits in (they are already being imported when `name` runs)."""
    found = set(targets)
    for target in targets:
        parts = target.split(".")
        for length in range(1, len(parts)):
            package = ".".join(parts[:length])
            if package in modules and not name.startswith(package + "."):
                found.add(package)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = module_paths()
    modules = set(paths)
    return {name: with_packages(name, imports_of(name, path, modules), modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    graph = {"node.a": {"node.b"}, "node.b": {"node.c"}, "node.c": {"node.a"}, "node.d": {"node.a"}}
    assert cycles(graph) == [["node.a", "node.b", "node.c"]]
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import node.errors\n"
                    "def late():\n    from node.service import Node\n")
    assert imports_of("node.probe", path, {"node.service", "node.errors"}) == {"node.service"}


def test_the_cycle_finder_counts_the_package_an_import_runs_first() -> None:
    modules = {"cluster.launcher", "cluster.launcher.ports", "cluster.launcher.cluster", "cluster.events.broker"}
    # broker -> cluster.launcher.ports runs cluster/launcher/__init__, which imports the launcher, which
    # imports the broker: a cycle that only shows once the package is counted
    graph = {"cluster.events.broker": with_packages("cluster.events.broker", {"cluster.launcher.ports"}, modules),
             "cluster.launcher": {"cluster.launcher.cluster"},
             "cluster.launcher.cluster": with_packages("cluster.launcher.cluster", {"cluster.events.broker",
                                                                                  "cluster.launcher.ports"}, modules),
             "cluster.launcher.ports": set()}
    assert cycles(graph) == [["cluster.events.broker", "cluster.launcher", "cluster.launcher.cluster"]]


def test_node_never_imports_cluster() -> None:
    for name, targets in import_graph().items():
        if name.startswith("node"):
            assert not {t for t in targets if t.split(".")[0] == "cluster"}, f"{name} imports cluster"


def test_cluster_imports_only_the_wire_types_and_the_publisher_from_node() -> None:
    for name, targets in import_graph().items():
        if name.startswith("cluster"):
            from_node = {t for t in targets if t.split(".")[0] == "node"}
            allowed = CLUSTER_MAY_IMPORT_FROM_NODE | (SIM_BOOT_MAY_IMPORT_FROM_NODE if name == SIM_BOOT else set())
            assert from_node <= allowed, f"{name} imports {from_node}"


def test_the_rules_are_checked_against_real_imports() -> None:
    graph = import_graph()
    assert "node.protocol" in graph["cluster.runner.observe"]
    assert "node.eventbus" in graph["cluster.coordinator.engine"]
    assert "node.replication.seam" in graph["node.service"]
    assert "node.replication.agent" not in graph["node.service"]


def test_folders_are_small_and_packages_say_what_they_own() -> None:
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            folder = init.parent
            modules = [p for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
            assert len(modules) <= MODULES_PER_FOLDER_MAX, f"{folder} holds {len(modules)} modules"
            docstring = ast.get_docstring(ast.parse(init.read_text()))
            assert docstring, f"{init} does not say what its package owns"
