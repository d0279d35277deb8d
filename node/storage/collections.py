"""The node's collections on disk and in memory.

Layout under the data directory:
    node.json                                   {"peer_id": ...} (identity kept across restarts)
    collections/{name}/config.json              the collection's config (Qdrant's CollectionParams shape)
    collections/{name}/shards/{id}/             one Shard (node/storage/shard.py) per local shard
    transient/                                  collections being built or deleted (emptied at start)
A collection exists on a node once its config.json is written; shards are opened when they are local.
Replacing shards' data (snapshot recovery, transfers) builds the new shards aside and swaps them in as one
step that a crash cannot split (node/storage/swaps.py); a collection recovered from a snapshot on a node
that did not have it is built whole under transient/ and renamed into place.
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
from node.errors import AlreadyExists, BadInput, collection_not_found, shard_not_found
from node.protocol import PointId, shard_for_point
from node.storage.operations import OperationSchema
from node.storage.shard import PointSet, Shard, directory_fsync, shard_build_aside, shard_directory_repair
from node.storage.swaps import prepared_path, shard_swap, swap_commit, swap_finish, swaps_finish
from node.storage.vectors import VectorSpec, vectors_config_parse

COLLECTION_NAME_BYTES_MAX = 255


def collection_name_check(name: str) -> None:
    """A safety net under the API's checks (node/api/validation.py): a name must be one folder name."""
    if not name or "/" in name or "\0" in name or name in (".", "..") or \
            len(name.encode()) > COLLECTION_NAME_BYTES_MAX:
        raise BadInput(f"Collection name `{name}` is not valid: it must be one folder name of at most "
                       f"{COLLECTION_NAME_BYTES_MAX} bytes")


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


TRANSIENT_DIR = "transient"


@dataclass
class ShardData:
    """Verified content for one shard (a snapshot's or a transfer's): what `Collection.shards_prepare`
    builds aside and `shards_swap` swaps in."""
    seq: int
    points: PointSet
    tombstones: dict[PointId, int]
    digest: str


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

    @functools.cached_property
    def schema(self) -> OperationSchema:
        """What every operation on this collection's shards is checked against before it is logged."""
        return OperationSchema.from_config(self.config)

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
            self.shards[shard_id] = Shard.open(directory, self.name, shard_id, self.schema)
        return self.shards[shard_id]

    def shard_close(self, shard_id: int, remove_data: bool) -> None:
        shard = self.shards.pop(shard_id, None)
        if shard is not None:
            shard.close()
        if remove_data:
            shutil.rmtree(self.shard_directory(shard_id), ignore_errors=True)

    def shards_prepare(self, data: dict[int, ShardData]) -> dict[int, Path]:
        """Build every shard's new directory aside, complete and fsynced; nothing live changes. Blocking."""
        shards_dir = self.directory / "shards"
        token = clock.token_hex(4)
        prepared: dict[int, Path] = {}
        try:
            for shard_id, content in sorted(data.items()):
                prepared[shard_id] = prepared_path(shards_dir, shard_id, token)
                shard_build_aside(prepared[shard_id], self.name, shard_id, content.seq, content.points,
                                  content.tombstones)
        except BaseException:
            for path in prepared.values():
                shutil.rmtree(path, ignore_errors=True)
            raise
        return prepared

    def shards_swap(self, prepared: dict[int, Path], data: dict[int, ShardData]) -> Path:
        """Commit the swap of every prepared shard (one fsynced marker), rename each into place and open it
        from the verified content in memory (nothing decoded), keeping the old shard's update hooks.
        Runs on the event loop, so no write reaches a shard between the old one's close and the new one's
        open. Returns the marker, for `shards_swap_finish`."""
        shards_dir = self.directory / "shards"
        marker = swap_commit(shards_dir, prepared)
        for shard_id, path in sorted(prepared.items()):
            old = self.shards.pop(shard_id, None)
            hooks = old.update_hooks if old is not None else []
            if old is not None:
                old.close()
            shard_swap(shards_dir, shard_id, path.name)
            content = data[shard_id]
            shard = Shard.adopt(self.shard_directory(shard_id), self.name, shard_id, content.seq, content.points,
                                content.tombstones, content.digest, self.schema)
            shard.update_hooks = hooks
            self.shards[shard_id] = shard
        directory_fsync(shards_dir)
        return marker

    def shards_swap_finish(self, marker: Path) -> None:
        """Remove the swapped-out directories and the marker. Blocking."""
        swap_finish(self.directory / "shards", marker)

    def points_count(self) -> int:
        return sum(len(shard.points) for shard in self.shards.values())


class Storage:
    """All collections of this node."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.collections_dir = data_dir / "collections"
        self.collections_dir.mkdir(parents=True, exist_ok=True)
        self.transient_dir = data_dir / TRANSIENT_DIR
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
        """Open every collection, after finishing what a crash interrupted: collections half built or half
        deleted (transient/) are removed, committed shard swaps rolled forward, uncommitted ones dropped."""
        shutil.rmtree(self.transient_dir, ignore_errors=True)
        for directory in sorted(self.collections_dir.iterdir()):
            config_path = directory / "config.json"
            if not config_path.exists():
                shutil.rmtree(directory, ignore_errors=True)  # never finished being created
                continue
            swaps_finish(directory / "shards")
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
        temporary = directory / "config.json.tmp"
        temporary.write_text(json.dumps(config, sort_keys=True))
        os.replace(temporary, directory / "config.json")
        collection = Collection(name, config, directory)
        for shard_id in local_shards:
            collection.shard_open(shard_id)
        self.collections[name] = collection
        return collection

    def transient_path(self, kind: str) -> Path:
        """A fresh path under transient/ (same file system as collections/, so a rename moves it)."""
        self.transient_dir.mkdir(parents=True, exist_ok=True)
        return self.transient_dir / f"{kind}-{clock.token_hex(8)}"

    def collection_build(self, name: str, config: dict[str, Any], data: dict[int, ShardData]) -> Path:
        """Build a whole collection (config and shards, fsynced) under transient/, for
        `collection_install`. Blocking."""
        collection_name_check(name)
        staging = self.transient_path("collection")
        try:
            for shard_id, content in sorted(data.items()):
                shard_build_aside(staging / "shards" / str(shard_id), name, shard_id, content.seq, content.points,
                                  content.tombstones)
            (staging / "shards").mkdir(parents=True, exist_ok=True)
            with (staging / "config.json").open("w") as file:
                file.write(json.dumps(config, sort_keys=True))
                file.flush()
                os.fsync(file.fileno())
            directory_fsync(staging / "shards")
            directory_fsync(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return staging

    def collection_install(self, name: str, config: dict[str, Any], staging: Path,
                           data: dict[int, ShardData]) -> Collection:
        """Rename a collection built by `collection_build` into place (one rename: it exists whole or not
        at all) and open its shards from the verified content in memory."""
        directory = self.collections_dir / name
        if name in self.collections or directory.exists():
            shutil.rmtree(staging, ignore_errors=True)
            raise AlreadyExists(f"Collection `{name}` already exists!")
        os.replace(staging, directory)
        directory_fsync(self.collections_dir)
        collection = Collection(name, config, directory)
        for shard_id, content in sorted(data.items()):
            collection.shards[shard_id] = Shard.adopt(collection.shard_directory(shard_id), name, shard_id,
                                                      content.seq, content.points, content.tombstones,
                                                      content.digest, collection.schema)
        self.collections[name] = collection
        return collection

    def delete(self, name: str) -> bool:
        collection = self.collections.pop(name, None)
        if collection is None:
            return False
        for shard_id in list(collection.shards):
            collection.shard_close(shard_id, remove_data=False)
        trash = self.transient_path("deleted")  # a crash while it is removed cannot bring it back
        os.replace(collection.directory, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def close(self) -> None:
        for collection in self.collections.values():
            for shard in collection.shards.values():
                shard.close()
