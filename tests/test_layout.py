"""Dependencies point one way (DESIGN section 1): `node/` never imports `cluster/`, and `cluster/` reaches into
`node/` only for the pure wire types (`node.protocol`) and the event publisher (`node.eventbus`, an MQTT
client with no node state, shared so that nodes and cluster tools publish the same way)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_MAY_IMPORT_FROM_NODE = {"node.protocol", "node.eventbus"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for item in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(item, ast.Import):
            found |= {alias.name for alias in item.names}
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            found.add(item.module)
            found |= {f"{item.module}.{alias.name}" for alias in item.names if item.module == "node"}
    return found


def test_node_never_imports_cluster() -> None:
    for path in sorted((ROOT / "node").rglob("*.py")):
        bad = {name for name in imports_of(path) if name == "cluster" or name.startswith("cluster.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_cluster_imports_only_the_wire_types_and_the_publisher_from_node() -> None:
    for path in sorted((ROOT / "cluster").rglob("*.py")):
        from_node = {name for name in imports_of(path) if name == "node" or name.startswith("node.")}
        assert from_node <= CLUSTER_MAY_IMPORT_FROM_NODE, f"{path.relative_to(ROOT)} imports {from_node}"


def test_the_rule_is_checked_against_real_imports() -> None:
    assert "node.protocol" in imports_of(ROOT / "cluster" / "runner" / "observe.py")
    assert "node.eventbus" in imports_of(ROOT / "cluster" / "coordinator" / "engine.py")
