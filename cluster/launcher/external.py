"""External mode on the command line: the flags that describe a cluster the launcher did not start.

Used by `shardsim up --external` and by the scenario runner (`shardsim run SCENARIO --external`), so both
read the same flags and the same environment variables (what docker-compose and multi-host setups set):

    --external                         join running processes instead of starting them
    --node NAME=PEER_ID@HOST:PORT      a node (repeat; or SHARDSIM_NODES="n1=1@n1:6333,n2=2@n2:6333")
    --coordinator-url URL              the coordinator (or SHARDSIM_COORDINATOR_URL)
    --toxiproxy-url URL                the Toxiproxy API (or TOXIPROXY_URL)
    --mqtt-url URL                     the MQTT broker (or SHARDSIM_MQTT_URL)
    --cluster-name NAME                the cluster name every process was started with (or SHARDSIM_CLUSTER)
    --proxy-host HOST                  the host nodes reach link listen ports at (or SHARDSIM_PROXY_HOST)
    --proxy-listen-host HOST           where links listen on Toxiproxy (default 0.0.0.0 with --proxy-host)
    --proxy-base-port PORT             links listen on consecutive ports from PORT (default: any free port)

`cluster_from_args(args, nodes=..., **options)` turns parsed flags into a `Cluster` (local or external).
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from cluster.launcher.cluster import Cluster, ClusterNotReady, NodeAddress

NODE_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)=(?:(?P<peer_id>\d+)@)?(?P<host>[^\s:@]+|\[[^\]]+\]):"
                          r"(?P<port>\d+)$")


def node_parse(text: str, position: int = 1) -> NodeAddress:
    """`n1=1@host:6333` -> NodeAddress("n1", 1, "host:6333"); without `1@` the peer id is `position`."""
    found = NODE_PATTERN.match(text.strip())
    if found is None:
        raise ValueError(f"bad node {text!r}: expected NAME=PEER_ID@HOST:PORT, e.g. n1=1@10.0.0.11:6333")
    peer_id = int(found["peer_id"]) if found["peer_id"] else position
    return NodeAddress(found["name"], peer_id, f"{found['host']}:{found['port']}")


def nodes_parse(items: list[str]) -> list[NodeAddress]:
    """Every `--node` value, each possibly a comma-separated list, in order (peer ids default to 1, 2, ...)."""
    texts = [part for item in items for part in item.split(",") if part.strip()]
    return [node_parse(text, position) for position, text in enumerate(texts, start=1)]


def external_args_add(parser: argparse.ArgumentParser) -> None:
    """Add the external-mode flags (defaults from the environment) to a command's parser."""
    group = parser.add_argument_group("external mode", "Join processes started elsewhere (containers, hosts). "
                                      "--mqtt-url, --cluster-name and --toxiproxy-url also apply to a local cluster.")
    group.add_argument("--external", action="store_true", default=bool(os.environ.get("SHARDSIM_EXTERNAL")),
                       help="join running processes instead of starting them (default: $SHARDSIM_EXTERNAL set)")
    group.add_argument("--node", action="append", default=[], metavar="NAME=PEER_ID@HOST:PORT",
                       help="a node (repeat, or comma-separate; default: $SHARDSIM_NODES)")
    group.add_argument("--coordinator-url", metavar="URL", default=os.environ.get("SHARDSIM_COORDINATOR_URL"),
                       help="the coordinator (default: $SHARDSIM_COORDINATOR_URL)")
    group.add_argument("--toxiproxy-url", metavar="URL", default=os.environ.get("TOXIPROXY_URL"),
                       help="a Toxiproxy API to use instead of the embedded fault proxy (default: $TOXIPROXY_URL)")
    group.add_argument("--mqtt-url", metavar="URL", default=os.environ.get("SHARDSIM_MQTT_URL"),
                       help="a broker to use instead of the embedded one (default: $SHARDSIM_MQTT_URL)")
    group.add_argument("--cluster-name", metavar="NAME", default=os.environ.get("SHARDSIM_CLUSTER"),
                       help="the cluster's name in event topics (default: $SHARDSIM_CLUSTER, else a new one)")
    group.add_argument("--proxy-host", metavar="HOST", default=os.environ.get("SHARDSIM_PROXY_HOST"),
                       help="host nodes reach link listen ports at, e.g. toxiproxy (default: $SHARDSIM_PROXY_HOST)")
    group.add_argument("--proxy-listen-host", metavar="HOST", default=os.environ.get("SHARDSIM_PROXY_LISTEN_HOST"),
                       help="where links listen on Toxiproxy (default: $SHARDSIM_PROXY_LISTEN_HOST, else 0.0.0.0 with --proxy-host, else 127.0.0.1)")
    group.add_argument("--proxy-base-port", metavar="PORT", type=int, default=_int_env("SHARDSIM_PROXY_BASE_PORT"),
                       help="links listen on consecutive ports from here (for firewalls) (default: $SHARDSIM_PROXY_BASE_PORT, else any)")


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def external_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `Cluster` options the external-mode flags give (empty values left out)."""
    options: dict[str, Any] = {
        "toxiproxy_url": args.toxiproxy_url, "mqtt_url": args.mqtt_url, "cluster_name": args.cluster_name,
        "proxy_host": args.proxy_host, "proxy_listen_host": args.proxy_listen_host,
        "proxy_base_port": args.proxy_base_port}
    if args.external:
        items = args.node or [os.environ.get("SHARDSIM_NODES", "")]
        options["external_nodes"] = nodes_parse(items)
        options["coordinator_url"] = args.coordinator_url
        if not options["external_nodes"] or not args.coordinator_url:
            raise ClusterNotReady("--external needs the nodes (--node NAME=PEER_ID@HOST:PORT or SHARDSIM_NODES) "
                                  "and the coordinator (--coordinator-url or SHARDSIM_COORDINATOR_URL)")
    return {key: value for key, value in options.items() if value is not None}


def cluster_from_args(args: argparse.Namespace, nodes: int = 3, **options: Any) -> Cluster:
    """A `Cluster` from flags added by `external_args_add`, plus the caller's options (run_dir, ...).

    Local mode: `nodes` processes are started. External mode: the nodes are the ones given, and there must
    be exactly `nodes` of them (a scenario written for 3 nodes does not run on 2).
    """
    merged = {**options, **external_options(args)}
    if args.external and len(merged["external_nodes"]) != nodes:
        given = ", ".join(node.name for node in merged["external_nodes"])
        raise ClusterNotReady(f"this run needs {nodes} nodes, external mode was given "
                              f"{len(merged['external_nodes'])} ({given})")
    return Cluster(nodes=nodes, **merged)
