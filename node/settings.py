"""The node's settings: every limit is named, with its unit last. Filled from the command line."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class NodeSettings:
    data_dir: Path
    snapshots_dir: Path
    host: str = "127.0.0.1"
    port: int = 6333
    peer_id: int | None = None
    name: str | None = None
    api_key: str | None = None
    max_upload_bytes: int = 8 << 30
    coordinator_url: str | None = None
    advertise_address: str | None = None
    mqtt_url: str | None = None
    cluster_name: str = "shardsim"
    default_priority: str = "replica"
    chunk_bytes: int = 1 << 20
    download_timeout_s: float = 300.0
    download_stall_timeout_s: float = 30.0
    forward_timeout_s: float = 5.0
    internal_timeout_s: float = 10.0
    compaction_interval_s: float = 30.0
    compaction_wal_bytes: int = 32 << 20
    state_pull_interval_s: float = 2.0
    transfer_queue_size: int = 100_000
    transfer_timeout_s: float = 120.0
    transfer_attempts: int = 3

    @property
    def clustered(self) -> bool:
        return self.coordinator_url is not None


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m node", description="A shardsim node: Qdrant-compatible "
                                     "REST API for collections, points, snapshots and cluster operations.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--data-dir", type=Path, default=Path("./data"))
    parser.add_argument("--snapshots-dir", type=Path, default=None,
                        help="default: <data-dir>/snapshots")
    parser.add_argument("--peer-id", type=int, default=None, help="default: kept in <data-dir>/node.json")
    parser.add_argument("--name", default=None, help="a readable name such as n1 (events, logs)")
    parser.add_argument("--api-key", default=os.environ.get("QDRANT__SERVICE__API_KEY"))
    parser.add_argument("--max-upload-bytes", type=int, default=8 << 30)
    parser.add_argument("--coordinator-url", default=None, help="join a cluster run by this coordinator")
    parser.add_argument("--advertise-address", default=None, help="host:port other processes reach us at")
    parser.add_argument("--mqtt-url", default=os.environ.get("SHARDSIM_MQTT_URL"))
    parser.add_argument("--cluster-name", default=os.environ.get("SHARDSIM_CLUSTER", "shardsim"))
    parser.add_argument("--default-priority", choices=["replica", "snapshot"], default="replica",
                        help="snapshot recovery priority when the request gives none (Qdrant's server: "
                             "snapshot; its API docs: replica)")
    parser.add_argument("--transfer-timeout-s", type=float, default=120.0)
    parser.add_argument("--compaction-wal-bytes", type=int, default=32 << 20,
                        help="compact a shard once its write-ahead log holds this many bytes")
    parser.add_argument("--compaction-interval-s", type=float, default=30.0,
                        help="how often shards are checked for compaction")
    parser.add_argument("--download-stall-timeout-s", type=float, default=30.0)
    return parser


def settings_from_args(argv: list[str] | None = None) -> NodeSettings:
    args = parser_build().parse_args(argv)
    data_dir = args.data_dir.resolve()
    snapshots_dir = (args.snapshots_dir or data_dir / "snapshots").resolve()
    return NodeSettings(
        data_dir=data_dir, snapshots_dir=snapshots_dir, host=args.host, port=args.port, peer_id=args.peer_id,
        name=args.name, api_key=args.api_key, max_upload_bytes=args.max_upload_bytes,
        coordinator_url=args.coordinator_url, advertise_address=args.advertise_address,
        mqtt_url=args.mqtt_url, cluster_name=args.cluster_name, default_priority=args.default_priority,
        transfer_timeout_s=args.transfer_timeout_s, download_stall_timeout_s=args.download_stall_timeout_s,
        compaction_wal_bytes=args.compaction_wal_bytes, compaction_interval_s=args.compaction_interval_s)
