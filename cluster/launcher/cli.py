"""`shardsim up`: start a cluster (or join one, `--external`), print its endpoints, run until Ctrl-C.

    shardsim up --nodes 3 [--base-port P] [--run-dir D] [--default-priority replica|snapshot]

Local mode starts the coordinator (port P) and N nodes (ports P+1..P+N; free ports without `--base-port`)
as separate processes, with the embedded fault proxy and MQTT broker inside this process, waits until all
are ready and prints which URL is which, where the logs are, and writes the same as `endpoints.json` in the
run folder. While it runs, a watch loop reports any process that dies, with the end of its log. Ctrl-C or
SIGTERM stops every process by PID. `--external` (flags in `cluster/launcher/external.py`) joins processes started
elsewhere instead: it creates the proxy links and registers the topology, then prints the same listing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from cluster.launcher.cluster import Cluster, ClusterNotReady, run_dir_default
from cluster.launcher.external import cluster_from_args, external_args_add
from cluster.launcher.processes import ProcessFailed
from cluster.proxy.client import ToxiproxyError
from cluster.ui.server import live_page_args_add, live_page_start
from node import clock
from node.protocol import PRIORITY_DEFAULT, PRIORITY_DEFAULT_CHOICES

WATCH_INTERVAL_S = 0.5
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def up_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim up` (wired in cluster/cli.py)."""
    parser.add_argument("--nodes", metavar="N", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--base-port", metavar="PORT", type=int, default=None,
                        help="coordinator on this port, nodes on the next ones (default: free ports)")
    parser.add_argument("--run-dir", metavar="DIR", type=Path, default=None, help="logs and data (default runs/up-<time>)")
    parser.add_argument("--default-priority", choices=PRIORITY_DEFAULT_CHOICES, default=PRIORITY_DEFAULT,
                        metavar="replica|snapshot",
                        help="snapshot recovery priority when a request gives none (default replica)")
    parser.add_argument("--transfers-limit", metavar="N", type=int, default=1,
                        help="incoming and outgoing transfers per peer for auto-recovery (0 turns it off)")
    parser.add_argument("--ready-timeout-s", metavar="SECONDS", type=float, default=30.0,
                        help="how long each process may take to become ready (default 30)")
    parser.add_argument("--api-key", metavar="KEY", default=os.environ.get("SHARDSIM_API_KEY"),
                        help="every node and the coordinator require this key (`api-key` header or Bearer "
                             "token), as Qdrant's service.api_key (default: $SHARDSIM_API_KEY)")
    parser.add_argument("--alt-api-key", metavar="KEY", default=None,
                        help="a second accepted key, as Qdrant's service.alt_api_key (key rotation)")
    live_page_args_add(parser, "also serve the live page (shardsim ui)")
    external_args_add(parser)


def ports_check(base_port: int, count: int) -> None:
    """Raise ClusterNotReady naming the first port of base_port..base_port+count-1 already in use."""
    for port in range(base_port, base_port + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                raise ClusterNotReady(f"port {port} is in use ({error.strerror}); choose another --base-port") \
                    from error


def endpoints_describe(cluster: Cluster) -> dict[str, Any]:
    """What `endpoints.json` holds: every URL, the links, and the PID and log of every owned process."""
    processes = {name: {"pid": child.pid, "log": str(child.log_path)}
                 for name, child in cluster.processes().items()}
    nodes = {name: {"url": cluster.node_url(name), "peer_id": cluster.peer_id(name), **processes.get(name, {})}
             for name in cluster.node_names()}
    return {"cluster_name": cluster.cluster_name, "external": cluster.external, "nodes": nodes,
            "coordinator": {"url": cluster.coordinator_url, **processes.get("coordinator", {})},
            "toxiproxy": cluster.toxiproxy_url, "mqtt": cluster.mqtt_url, "links": cluster.links,
            "run_dir": str(cluster.run_dir), "launcher_pid": os.getpid()}


def endpoints_text(described: dict[str, Any], elapsed_s: float, default_priority: str) -> str:
    mode = "joined (external mode)" if described["external"] else "started"
    lines = [f"shardsim up: cluster {described['cluster_name']} {mode} in {elapsed_s:.1f} s, "
             f"{len(described['nodes'])} nodes, default priority {default_priority}"]
    for name, node in described["nodes"].items():
        owned = f"  pid {node['pid']}  log {node['log']}" if "pid" in node else ""
        lines.append(f"  {name:<12} {node['url']}  peer {node['peer_id']}{owned}")
    coordinator = described["coordinator"]
    owned = f"  pid {coordinator['pid']}  log {coordinator['log']}" if "pid" in coordinator else ""
    lines.append(f"  {'coordinator':<12} {coordinator['url']}{owned}")
    lines.append(f"  {'toxiproxy':<12} {described['toxiproxy']}  fault proxy API (Toxiproxy v2), "
                 f"{len(described['links'])} links")
    lines.append(f"  {'mqtt':<12} {described['mqtt']}  live view: shardsim watch --mqtt-url {described['mqtt']} "
                 f"--cluster-name {described['cluster_name']}")
    lines.append(f"  {'run folder':<12} {described['run_dir']}  (endpoints.json and the logs)")
    lines.append("links (proxy name -> listen address): " + ", ".join(
        f"{name} {address}" for name, address in described["links"].items()))
    lines.append(f"Stop with Ctrl-C (or kill -TERM {described['launcher_pid']}).")
    return "\n".join(lines)


async def watch_processes(cluster: Cluster, stop: asyncio.Event) -> None:
    """Until `stop`: report each owned process that exits unasked, once per PID, with the end of its log."""
    reported: set[int | None] = set()
    while not stop.is_set():
        for child in cluster.processes().values():
            if not child.alive and not child.expected_exit and child.pid not in reported:
                reported.add(child.pid)
                print(f"shardsim up: process died: {child.exit_report()}", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
        except TimeoutError:
            pass


async def up(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    main_task = asyncio.current_task()
    started = False

    def on_signal() -> None:
        stop.set()
        if not started and main_task is not None:
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, on_signal)
    if args.base_port and not args.external:
        ports_check(args.base_port, args.nodes + 1)
    async with contextlib.AsyncExitStack() as stack:
        if args.ui:
            args.cluster_name = args.cluster_name or f"shardsim-up-{os.getpid()}"
            args.mqtt_url = await live_page_start(stack, args.mqtt_url, args.cluster_name, args.ui_port)
        cluster = cluster_from_args(args, nodes=args.nodes, run_dir=args.run_dir or run_dir_default("up"),
                                    base_port=args.base_port, default_priority=args.default_priority,
                                    transfers_limit=args.transfers_limit, ready_timeout_s=args.ready_timeout_s,
                                    api_key=args.api_key, alt_api_key=args.alt_api_key)
        began = clock.monotonic()
        async with cluster:
            started = True
            described = endpoints_describe(cluster)
            (cluster.run_dir / "endpoints.json").write_text(json.dumps(described, indent=2) + "\n")
            print(endpoints_text(described, clock.monotonic() - began, args.default_priority), flush=True)
            await watch_processes(cluster, stop)
            print("shardsim up: stopping", flush=True)
    return EXIT_OK


def up_main(args: argparse.Namespace) -> int:
    """`shardsim up` with the options of `up_arguments_add`."""
    try:
        return asyncio.run(up(args))
    except (ClusterNotReady, ProcessFailed, ToxiproxyError, aiohttp.ClientError, ValueError) as error:
        print(f"shardsim up: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("shardsim up: interrupted while starting; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
