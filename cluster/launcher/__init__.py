"""Starting and joining clusters: `Cluster` (processes, fault-proxy links, topology), `shardsim up`,
external mode for processes started elsewhere, and child-process handling (ports, logs, signals).
"""

from cluster.launcher.cluster import (
    Cluster,
    ClusterNotReady,
    ClusterOptions,
    NodeAddress,
    NodeSpec,
    run_dir_default,
)
from cluster.launcher.processes import ProcessNotOwned

__all__ = ["Cluster", "ClusterNotReady", "ClusterOptions", "NodeAddress", "NodeSpec", "ProcessNotOwned",
           "run_dir_default"]
