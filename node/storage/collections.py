"""The node's collections on disk and in memory.

Layout under the data directory:
    node.json                                   {"peer_id": ...} (identity kept across restarts)
    collections/{name}/config.json              the collection's config (Qdrant's CollectionParams shape)
    collections/{name}/shards/{id}/             one Shard (node/storage/shard.py) per local shard
A collection exists on a node once its config.json is written; shards are opened when they are local.
Replacing a shard's data (snapshot recovery, transfers) builds the new shard aside and swaps it in.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node import clock
from node.errors import BadInput, collection_not_found, shard_not_found
from node.protocol import PointId, shard_for_point
from node.storage.shard import (
    PointSet,
    Shard,
    directory_fsync,
    shard_build_aside,
    shard_directory_repair,
    shard_directory_swap,
)
from node.storage.vectors import VectorSpec, vectors_config_parse

COLLECTION_NAME_BYTES_MAX = 255


def collection_name_check(name: str) -> None:
    """A safety net under the API's checks (node/api/validation.py): a name must be one folder name."""
    if not name or "/" in name or "\0" in name or name in (".", "..") or \
            len(name.encode()) > COLLECTION_NAME_BYTES_MAX:
        raise BadInput(f"Collection name `{name}` is not valid: it must be one folder name of at most "
                       f"{COLLECTION_NAME_BYTES_MAX} bytes")


def config_write(directory: Path, config: dict[str, Any]) -> None:
    """Write `config.json` whole: a temporary file renamed over the old one."""
    temporary = directory / "config.json.tmp"
    temporary.write_text(json.dumps(config, sort_keys=True))
    os.replace(temporary, directory / "config.json")


def config_from_request(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a create-collection body (Qdrant's shape) and return the stored config: `vectors`,
    `sparse_vectors` and `on_disk_payload` as given (node/storage/vectors.py), and the shard counts."""
    config = vectors_config_parse(body)
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        value = body.get(key)
        if value is None:
            value = 1
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInput(f"{key}: must be a positive integer")
        config[key] = value
    return config


@dataclass
class Collection:
    name: str
    config: dict[str, Any]
    directory: Path
    shards: dict[int, Shard] = field(default_factory=dict)

    @property
    def shard_number(self) -> int:
        return int(self.config["shard_number"])

    @functools.cached_property
    def vector_spec(self) -> VectorSpec:
        """The collection's dense and sparse vectors, parsed from its config (which never changes)."""
        return VectorSpec.from_config(self.config)

    def shard_of(self, point_id: PointId) -> int:
        return shard_for_point(point_id, self.shard_number)

    def shard_directory(self, shard_id: int) -> Path:
        return self.directory / "shards" / str(shard_id)

    def shard_check(self, shard_id: int) -> None:
        if not 0 <= shard_id < self.shard_number:
            raise shard_not_found(shard_id)

    def shard_local(self, shard_id: int) -> Shard:
        self.shard_check(shard_id)
        shard = self.shards.get(shard_id)
        if shard is None:
            raise BadInput(f"Shard {shard_id} is not a local or queue proxy shard")
        return shard

    def shard_open(self, shard_id: int) -> Shard:
        if shard_id not in self.shards:
            directory = self.shard_directory(shard_id)
            shard_directory_repair(directory)
            self.shards[shard_id] = Shard.open(directory, self.name, shard_id)
        return self.shards[shard_id]

    def shard_close(self, shard_id: int, remove_data: bool) -> None:
        shard = self.shards.pop(shard_id, None)
        if shard is not None:
            shard.close()
        if remove_data:
            shutil.rmtree(self.shard_directory(shard_id), ignore_errors=True)

    def shard_replace(self, shard_id: int, seq: int, points: PointSet,
                      tombstones: dict[PointId, int] | None = None, digest: str | None = None) -> Shard:
        """Swap in new content for a shard atomically (built aside, then renamed into place).

        With the content's verified `digest`, the new shard is adopted from memory; otherwise it is opened
        from the file just written."""
        live = self.shard_directory(shard_id)
        prepared = live.with_name(f"{live.name}.new-{clock.token_hex(4)}")
        try:
            shard_build_aside(prepared, self.name, shard_id, seq, points, tombstones)
        except BaseException:
            shutil.rmtree(prepared, ignore_errors=True)
            raise
        old = self.shards.pop(shard_id, None)
        hooks = old.update_hooks if old is not None else []
        if old is not None:
            old.close()
        shard_directory_swap(live, prepared)
        if digest is not None:
            shard = Shard.adopt(live, self.name, shard_id, seq, points, tombstones or {}, digest)
        else:
            shard = Shard.open(live, self.name, shard_id)
        shard.update_hooks = hooks
        self.shards[shard_id] = shard
        return shard

    def points_count(self) -> int:
        return sum(len(shard.points) for shard in self.shards.values())


class Storage:
    """All collections of this node."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.collections_dir = data_dir / "collections"
        self.collections_dir.mkdir(parents=True, exist_ok=True)
        self.collections: dict[str, Collection] = {}

    def identity(self, peer_id: int | None) -> int:
        """The peer id kept in node.json; a given id wins and is stored, else one is made once."""
        path = self.data_dir / "node.json"
        stored = json.loads(path.read_text())["peer_id"] if path.exists() else None
        chosen = peer_id if peer_id is not None else stored
        if chosen is None:
            chosen = clock.randbelow(1 << 52) + 1
        if chosen != stored:  # atomically: a node killed here restarts with the old identity or the new one
            temporary = path.with_name(path.name + ".tmp")
            with temporary.open("w") as file:
                file.write(json.dumps({"peer_id": chosen}))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
            directory_fsync(self.data_dir)
        return int(chosen)

    def load(self, all_shards_local: bool) -> None:
        for directory in sorted(self.collections_dir.iterdir()):
            config_path = directory / "config.json"
            if not config_path.exists():
                shutil.rmtree(directory, ignore_errors=True)  # never finished being created
                continue
            collection = Collection(directory.name, json.loads(config_path.read_text()), directory)
            self.collections[collection.name] = collection
            shard_ids = range(collection.shard_number) if all_shards_local else sorted(
                int(path.name) for path in (directory / "shards").glob("*") if path.name.isdigit())
            for shard_id in shard_ids:
                collection.shard_open(shard_id)

    def get(self, name: str) -> Collection:
        collection = self.collections.get(name)
        if collection is None:
            raise collection_not_found(name)
        return collection

    def create(self, name: str, config: dict[str, Any], local_shards: list[int]) -> Collection:
        collection_name_check(name)
        directory = self.collections_dir / name
        if directory.exists():
            shutil.rmtree(directory)
        (directory / "shards").mkdir(parents=True)
        config_write(directory, config)
        collection = Collection(name, config, directory)
        for shard_id in local_shards:
            collection.shard_open(shard_id)
        self.collections[name] = collection
        return collection

    def config_set(self, collection: Collection, config: dict[str, Any]) -> None:
        """Replace a collection's config (its payload indexes change; vectors and shards never do)."""
        config_write(collection.directory, config)
        collection.config = config

    def delete(self, name: str) -> bool:
        collection = self.collections.pop(name, None)
        if collection is None:
            return False
        for shard_id in list(collection.shards):
            collection.shard_close(shard_id, remove_data=False)
        trash = collection.directory.with_name(f".deleted-{name}-{clock.token_hex(4)}")
        os.replace(collection.directory, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def close(self) -> None:
        for collection in self.collections.values():
            for shard in collection.shards.values():
                shard.close()
