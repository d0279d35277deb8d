"""`python -m node --port 6333 --data-dir ./data`: run one shardsim node until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from node.api.app import app_build
from node.settings import settings_from_args


def main(argv: list[str] | None = None) -> int:
    settings = settings_from_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {settings.name or 'node'} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    app = app_build(settings)
    print(f"shardsim node peer_id={app_peer_id(app)} listening on http://{settings.host}:{settings.port}",
          flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, handle_signals=True,
                shutdown_timeout=5.0)
    return 0


def app_peer_id(app: web.Application) -> int:
    from node.api.keys import NODE
    return app[NODE].peer_id


if __name__ == "__main__":
    sys.exit(main())
