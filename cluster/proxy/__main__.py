"""`python -m cluster.proxy --port 8474`: run the Toxiproxy-compatible fault proxy alone."""

import sys

from cluster.proxy.server import main

sys.exit(main())
