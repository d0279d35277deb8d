"""`python -m cluster.coordinator --port P --db PATH`: run the coordinator until SIGTERM or Ctrl-C.

Its flags are `CoordinatorSettings`' fields (`--help` lists them with their defaults).
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from cluster.coordinator.engine import Coordinator, CoordinatorSettings
from cluster.coordinator.server import app_build
from node.settings_args import settings_args_add, settings_from_namespace


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cluster.coordinator",
                                     description="The shardsim coordinator: the one writer of the cluster state.")
    settings_args_add(parser, CoordinatorSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    settings = settings_from_namespace(CoordinatorSettings, args, db_path=args.db_path.resolve())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s coordinator %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    print(f"shardsim coordinator listening on http://{settings.host}:{settings.port}", flush=True)
    web.run_app(app_build(Coordinator(settings)), host=settings.host, port=settings.port, print=None,
                shutdown_timeout=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
