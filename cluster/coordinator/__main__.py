"""`python -m cluster.coordinator --port P --db PATH`: run the coordinator until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from cluster.coordinator.engine import Coordinator, CoordinatorSettings
from cluster.coordinator.server import app_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.coordinator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6300)
    parser.add_argument("--db", type=Path, default=Path("coordinator.sqlite"))
    parser.add_argument("--mqtt-url", default=os.environ.get("SHARDSIM_MQTT_URL"))
    parser.add_argument("--cluster-name", default=os.environ.get("SHARDSIM_CLUSTER", "shardsim"))
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--default-priority", choices=["replica", "snapshot"], default="replica")
    parser.add_argument("--incoming-transfers-limit", type=int, default=1)
    parser.add_argument("--outgoing-transfers-limit", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s coordinator %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    settings = CoordinatorSettings(
        db_path=args.db.resolve(), host=args.host, port=args.port, mqtt_url=args.mqtt_url,
        cluster_name=args.cluster_name, api_key=args.api_key, default_priority=args.default_priority,
        incoming_transfers_limit=args.incoming_transfers_limit,
        outgoing_transfers_limit=args.outgoing_transfers_limit)
    print(f"shardsim coordinator listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(app_build(Coordinator(settings)), host=args.host, port=args.port, print=None,
                shutdown_timeout=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
