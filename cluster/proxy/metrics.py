"""Traffic counters of the fault proxy and their Prometheus text rendering (`GET /metrics`).

Part of `cluster.proxy`. Each proxy owns one `ProxyMetrics`; the data path adds to plain integers (no
locks: everything runs on one event loop), and `metrics_render` writes the exposition format with the real
Toxiproxy's metric names for bytes, plus connection counters of our own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class ProxyMetrics:
    """Counters of one proxy; `direction` is `upstream` (client -> server) or `downstream`."""

    received_bytes: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    sent_bytes: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    connections_total: int = 0
    connections_open: int = 0


@dataclass(frozen=True)
class MetricsRow:
    """What `metrics_render` needs to know about one proxy."""

    proxy: str
    listen: str
    upstream: str
    metrics: ProxyMetrics


def _labels(pairs: dict[str, str]) -> str:
    """Label pairs in name order, as Prometheus' own client writes them."""

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{escaped(value)}"' for key, value in sorted(pairs.items()))


_FAMILIES = (
    ("toxiproxy_proxy_received_bytes_total", "counter", "Bytes read from the source of each direction."),
    ("toxiproxy_proxy_sent_bytes_total", "counter", "Bytes written to the destination of each direction."),
    ("shardsim_proxy_connections_total", "counter", "Client connections accepted."),
    ("shardsim_proxy_connections_open", "gauge", "Client connections open now."),
)


def _samples(family: str, row: MetricsRow) -> list[str]:
    base = {"proxy": row.proxy, "listener": row.listen, "upstream": row.upstream}
    if family.endswith("_bytes_total"):
        counts = row.metrics.received_bytes if "received" in family else row.metrics.sent_bytes
        return [f"{family}{{{_labels({'direction': d, **base})}}} {n}" for d, n in sorted(counts.items())]
    value = row.metrics.connections_total if family.endswith("_total") else row.metrics.connections_open
    return [f"{family}{{{_labels(base)}}} {value}"]


def metrics_render(rows: Iterable[MetricsRow]) -> str:
    """The Prometheus text exposition of every proxy's counters."""
    ordered = sorted(rows, key=lambda row: row.proxy)
    lines: list[str] = []
    for family, kind, help_text in _FAMILIES:
        lines.append(f"# HELP {family} {help_text}")
        lines.append(f"# TYPE {family} {kind}")
        for row in ordered:
            lines.extend(_samples(family, row))
    return "\n".join(lines) + "\n"
