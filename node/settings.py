"""The node's settings: every limit is named, with its unit last, and its default written once, here.

`python -m node --help` lists them all: `parser_build` derives one option per field (`node/settings_args.py`),
so a field added here is a flag with no other edit.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from node.protocol import PRIORITY_DEFAULT, PRIORITY_DEFAULT_CHOICES
from node.settings_args import setting, settings_args_add, settings_from_namespace


@dataclass(kw_only=True)
class NodeSettings:
    host: str = field(default="127.0.0.1", metadata=setting("address to listen on"))
    port: int = field(default=6333, metadata=setting("the one HTTP port (public API and /internal/...)"))
    data_dir: Path = field(default=Path("data"), metadata=setting(
        "collections, shards, write-ahead logs and node.json (the peer id)"))
    snapshots_dir: Path = field(metadata=setting("Qdrant's storage.snapshots_path; none means <data-dir>/snapshots"))
    peer_id: int | None = field(default=None, metadata=setting("none means the one kept in <data-dir>/node.json"))
    name: str | None = field(default=None, metadata=setting("a readable name such as n1 (events, logs)"))
    api_key: str | None = field(default=None, metadata=setting(
        "every route but /, /healthz, /livez, /readyz needs this key", env="QDRANT__SERVICE__API_KEY"))
    alt_api_key: str | None = field(default=None, metadata=setting(
        "a second key accepted as well as --api-key, to rotate keys", env="QDRANT__SERVICE__ALT_API_KEY"))
    enable_snapshot_url_recovery: bool = field(default=True, metadata=setting(
        "recover snapshots from http(s) URLs; off: such a recovery is refused (403), as Qdrant's "
        "service.enable_snapshot_url_recovery", env="QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY"))
    snapshot_recovery_delay_s: float = field(default=0.0, metadata=setting(
        "a collection recovery holds each restored shard in ManualRecovery this long before the priority "
        "applies, as Qdrant's staging knob", env="QDRANT__STAGING__SNAPSHOT_RECOVERY_DELAY"))
    max_request_bytes: int = field(default=32 << 20, metadata=setting(
        "a larger JSON body gets 400, as past Qdrant's service.max_request_size_mb (32)"))
    max_upload_bytes: int = field(default=8 << 30, metadata=setting(
        "a larger upload or internal body gets 413; the partial upload is removed"))
    coordinator_url: str | None = field(default=None, metadata=setting("join a cluster run by this coordinator"))
    advertise_address: str | None = field(default=None, metadata=setting(
        "host:port other processes reach this node at (none means host:port)"))
    mqtt_url: str | None = field(default=None, metadata=setting(
        "the event bus (mqtt://host:port); none means no events", env="SHARDSIM_MQTT_URL"))
    cluster_name: str = field(default="shardsim", metadata=setting(
        "the cluster's name in event topics", env="SHARDSIM_CLUSTER"))
    default_priority: str = field(default=PRIORITY_DEFAULT, metadata=setting(
        "snapshot recovery priority when a request gives none (Qdrant's server: snapshot; its API docs: "
        "replica)", choices=PRIORITY_DEFAULT_CHOICES))
    chunk_bytes: int = field(default=1 << 20, metadata=setting("chunk size of snapshot streams and uploads"))
    download_timeout_s: float = field(default=300.0, metadata=setting(
        "longest download of a snapshot from a URL"))
    download_stall_timeout_s: float = field(default=30.0, metadata=setting(
        "a snapshot download or transfer stream that sends nothing this long fails"))
    forward_timeout_s: float = field(default=5.0, metadata=setting("a write or read forwarded to a peer"))
    internal_timeout_s: float = field(default=10.0, metadata=setting("a call to the coordinator"))
    compaction_interval_s: float = field(default=30.0, metadata=setting(
        "how often shards are checked for compaction"))
    compaction_wal_bytes: int = field(default=32 << 20, metadata=setting(
        "compact a shard once its write-ahead log holds this many bytes"))
    state_pull_interval_s: float = field(default=2.0, metadata=setting(
        "how often the cluster state is pulled from the coordinator (besides its pushes)"))
    transfer_queue_size: int = field(default=100_000, metadata=setting(
        "updates a transfer source holds for its target while the snapshot streams"))
    transfer_timeout_s: float = field(default=120.0, metadata=setting("longest stream of one transfer attempt"))
    transfer_attempts: int = field(default=3, metadata=setting("attempts of a transfer before it is aborted"))

    @property
    def clustered(self) -> bool:
        return self.coordinator_url is not None


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m node", description="A shardsim node: Qdrant-compatible "
                                     "REST API for collections, points, snapshots and cluster operations.")
    settings_args_add(parser, NodeSettings)
    return parser


def settings_from_args(argv: list[str] | None = None) -> NodeSettings:
    """The settings of `python -m node ARGV`: paths made absolute, the snapshots folder inside the data one
    unless given."""
    args = parser_build().parse_args(argv)
    data_dir = args.data_dir.resolve()
    snapshots_dir = (args.snapshots_dir or data_dir / "snapshots").resolve()
    return settings_from_namespace(NodeSettings, args, data_dir=data_dir, snapshots_dir=snapshots_dir)
