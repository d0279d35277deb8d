"""The launcher's public API that scripts outside the project build on (docs/launcher.md section 4).

Qdrant's consensus-test runner (`../shared/qdrant-tests/consensus/shardsim_consensus_shim.py`) subclasses
`Cluster` to put each node in Qdrant's peer folders and to add nodes to a running cluster; it imports
`NodeSpec` from `cluster.launcher` and `port_for_process` from `cluster.processes`. A rename breaks it without
any test of ours noticing, so the names and the hooks it overrides or calls are checked here.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from cluster.launcher import Cluster, ClusterOptions, NodeSpec
from cluster.ports import port_for_process as port_for_process_now
from cluster.processes import port_for_process

HOOKS = {"_ports_choose": 1, "_node_args": 2, "_node_start": 2, "_topology_register": 1, "_coordinator_put": 3,
         "links_seen": 2, "link_address": 2, "node_kill": 2, "node_restart": 2, "processes": 1,
         "dead_processes": 1, "node_url": 2}


def test_the_names_the_runner_imports_exist() -> None:
    assert port_for_process is port_for_process_now
    spec = NodeSpec("n4", 4, 6334, None)
    assert (spec.address, spec.url) == ("127.0.0.1:6334", "http://127.0.0.1:6334")


def test_the_hooks_the_runner_overrides_or_calls_keep_their_shape() -> None:
    for name, arity in HOOKS.items():
        method = getattr(Cluster, name)
        assert len(inspect.signature(method).parameters) == arity, name
    options = {field for field in ClusterOptions.__dataclass_fields__}
    assert {"run_dir", "default_priority", "api_key", "alt_api_key", "env", "ready_timeout_s"} <= options
    cluster = Cluster(nodes=2, run_dir=Path("/nonexistent/run"))
    assert {"nodes", "links", "toxiproxy", "coordinator_port", "run_dir"} <= set(vars(cluster))
