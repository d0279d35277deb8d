"""Where `port_for_process` lived before the launcher became a package (`cluster/launcher/`), kept so that
scripts written against that layout still import it (Qdrant's test runner does: docs/launcher.md section 4).
New code imports it from `cluster.ports`.
"""

from cluster.ports import port_for_process

__all__ = ["port_for_process"]
