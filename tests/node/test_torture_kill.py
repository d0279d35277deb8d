"""Torture: a standalone node process killed with SIGKILL at random instants, over and over (issue 14, item 6).

Each round drives one kind of work against a node whose shards compact all the time (a tiny
`--compaction-wal-bytes`), kills the process at a random instant of it (after a random delay, or as soon as
a chosen file appears on disk), restarts it on the same data directory, and checks:
- every write acknowledged with `wait=true` is there with its exact vector and payload, every acknowledged
  delete is gone, and a write in flight at the kill is wholly there or absent, point by point;
- a collection recovery (from a file location, from an upload, into the collection or into a new one) gave
  wholly the old data or wholly the snapshot's;
- every listed snapshot is complete: its bytes match its checksum;
- no temporary file is left (`.partial`, `.tmp`, `.old`, `.new-*`) and nothing is left in `transient/`.
The kinds of round: writes (some with `wait=false`), writes killed while a compaction writes its base file,
snapshot creation (collection, shard and full), collection recovery of a 3-shard collection from a location,
and upload recovery into the collection or into a new one.

Seeded and bounded: `SHARDSIM_TORTURE_SEED` (default 14) draws the plan, `SHARDSIM_TORTURE_SECONDS` (default
45) bounds it; run longer with e.g. `SHARDSIM_TORTURE_SECONDS=900`. The instants of the kills follow real
time, so a seed replays the plan, not the exact interleaving; a failure names the seed and every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from node.retry import WaitTimeout, wait_until
from tests.node.client import NodeClient
from tests.processes import NodeProcess

SECONDS = float(os.environ.get("SHARDSIM_TORTURE_SECONDS", "45"))
SEED = int(os.environ.get("SHARDSIM_TORTURE_SEED", "14"))
NODE_ARGS = ["--compaction-wal-bytes", "16384", "--compaction-interval-s", "0.05"]
SHARDS = 3
SIZE = 8
KINDS = ("writes", "compaction", "snapshots", "recovery", "upload")
TEMPORARY_MARKS = (".partial", ".tmp", ".old", ".new-")
ABSENT = None

Value = tuple[list[float], dict[str, Any]]
Data = dict[Any, Value]


def temporary_files(root: Path) -> list[Path]:
    found = [path for path in root.rglob("*") if any(mark in path.name for mark in TEMPORARY_MARKS)]
    transient = root / "transient"
    return found + (list(transient.iterdir()) if transient.is_dir() else [])


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Model:
    """What the node holds for certain after the last check, and what each known snapshot holds."""
    data: Data = field(default_factory=dict)
    snapshots: dict[str, Data] = field(default_factory=dict)  # collection snapshot name -> its points
    next_id: int = 0
    rounds: list[str] = field(default_factory=list)


@dataclass
class Outcomes:
    """Writes of one round: those acknowledged (certain) and those whose fate the kill left open."""
    certain: Data = field(default_factory=dict)
    deleted: set[Any] = field(default_factory=set)
    open: dict[Any, list[Value | None]] = field(default_factory=dict)  # id -> the values it may have


class Torture:
    def __init__(self, node: NodeProcess, client: NodeClient, rng: random.Random) -> None:
        self.node = node
        self.client = client
        self.rng = rng
        self.model = Model()
        self.snapshots_dir = node.data_dir / "snapshots"
        self.durations_s = {"writes": 1.5, "snapshots": 0.8, "recovery": 0.5, "upload": 0.5}

    # -- the instants of the kills ---------------------------------------------------------------------
    async def kill_at(self, work: asyncio.Future[Any], pattern: str | None, kind: str, fraction: float) -> str:
        """Kill the node when `pattern` appears under the data directory (if given) or after `fraction` of
        the time this kind of work last took when it was not killed, whichever comes first; returns what
        happened, for the round's line. (The fraction is drawn from the seed; the duration is measured.)"""
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay_s = fraction * self.durations_s[kind]
        deadline = started + delay_s

        killed = False

        def measured(_: asyncio.Future[Any]) -> None:
            if not killed:
                self.durations_s[kind] = max(loop.time() - started, 0.01)
        work.add_done_callback(measured)
        seen = False
        while loop.time() < deadline and not work.done():
            if pattern is not None and any(self.node.data_dir.glob(pattern)):
                seen = True
                break
            await asyncio.sleep(0.0005 if pattern else 0.005)
        ended = work.done()
        killed = True
        self.node.kill()
        with contextlib.suppress(Exception):
            await work
        return f"killed {'at ' + pattern if seen else f'after {delay_s:.3f} s'}" + \
            (" (after the work ended)" if ended else "")

    async def restart(self) -> None:
        """Start the node again; nothing a crash left half done may stay. (A compaction the new process
        starts at once writes its own temporary base file for a moment: only what stays counts.)"""
        self.node.start()
        await self.client.reconnect()
        try:
            await wait_until(lambda: not temporary_files(self.node.data_dir), 10.0, 0.02)
        except WaitTimeout:
            left = temporary_files(self.node.data_dir)
            raise AssertionError(f"temporary files survived the restart: {left}") from None
        await self.snapshots_check()

    # -- checks ----------------------------------------------------------------------------------------
    async def snapshots_check(self) -> None:
        """Every listed snapshot's bytes match its listed checksum."""
        listings = [("/snapshots", self.snapshots_dir),
                    ("/collections/docs/snapshots", self.snapshots_dir / "docs")]
        listings += [(f"/collections/docs/shards/{s}/snapshots", self.snapshots_dir / "docs" / "shards" / str(s))
                     for s in range(SHARDS)]
        for path, directory in listings:
            for listed in await self.client.ok("GET", path):
                assert sha256_of(directory / listed["name"]) == listed["checksum"], f"{path}: {listed}"

    async def data_check(self, outcomes: Outcomes | None, alternatives: tuple[Data, ...] = ()) -> Data:
        """The collection holds the model's data changed by `outcomes`, or exactly one of `alternatives`."""
        observed = await self.client.points_all("docs")
        if alternatives:
            assert observed in alternatives, f"{len(observed)} points: none of the states allowed"
            return observed
        assert outcomes is not None
        expected = {**self.model.data, **outcomes.certain}
        for point_id in outcomes.deleted:
            expected.pop(point_id, None)
        for point_id, options in outcomes.open.items():
            assert observed.get(point_id) in options, f"point {point_id}: {observed.get(point_id)} not in {options}"
            if observed.get(point_id) is None:
                expected.pop(point_id, None)
            else:
                expected[point_id] = observed[point_id]
        missing = {pid for pid in expected if pid not in observed}
        wrong = {pid for pid in expected if pid in observed and observed[pid] != expected[pid]}
        extra = set(observed) - set(expected)
        assert not (missing or wrong or extra), \
            f"acknowledged writes lost: {sorted(missing)[:10]}, changed: {sorted(wrong)[:10]}, unexpected: " \
            f"{sorted(extra)[:10]}"
        return observed

    # -- rounds ----------------------------------------------------------------------------------------
    def point(self, round_number: int) -> tuple[int, Value]:
        point_id = self.model.next_id
        self.model.next_id += 1
        vector = [self.rng.randint(-64, 64) / 8 for _ in range(SIZE)]
        payload = {"round": round_number, "n": point_id, "text": self.rng.choice(["a", "é", "字", ""]) * 3,
                   "nested": {"list": [self.rng.randint(0, 9), True, None]}}
        return point_id, (vector, payload)

    async def writes(self, round_number: int, outcomes: Outcomes) -> None:
        """Upserts of new points and deletes of certain ones, one request at a time, until killed."""
        for _ in range(100_000):
            known = sorted((set(self.model.data) | set(outcomes.certain)) - outcomes.deleted)
            if known and self.rng.random() < 0.15:
                ids = self.rng.sample(known, min(len(known), self.rng.randint(1, 20)))
                for point_id in ids:
                    outcomes.open[point_id] = [outcomes.certain.get(point_id, self.model.data.get(point_id)), ABSENT]
                await self.client.ok("POST", "/collections/docs/points/delete", {"points": ids},
                                     params={"wait": "true"})
                for point_id in ids:
                    del outcomes.open[point_id]
                    outcomes.certain.pop(point_id, None)
                    outcomes.deleted.add(point_id)
                continue
            batch = dict(self.point(round_number) for _ in range(self.rng.randint(1, 150)))
            wait = self.rng.random() < 0.8
            for point_id, value in batch.items():
                outcomes.open[point_id] = [value, ABSENT]
            body = {"points": [{"id": pid, "vector": v, "payload": p} for pid, (v, p) in batch.items()]}
            await self.client.ok("PUT", "/collections/docs/points", body, params={"wait": str(wait).lower()})
            if wait:  # acknowledged: certain; with wait=false nothing is promised until a restart shows it
                for point_id, value in batch.items():
                    del outcomes.open[point_id]
                    outcomes.certain[point_id] = value

    async def round_writes(self, round_number: int, pattern: str | None) -> str:
        outcomes = Outcomes()
        work = asyncio.ensure_future(self.writes(round_number, outcomes))
        what = await self.kill_at(work, pattern, "writes", self.rng.uniform(0.03, 1.0))
        await self.restart()
        self.model.data = await self.data_check(outcomes)
        return f"{len(outcomes.certain)} acknowledged upserts, {len(outcomes.deleted)} deletes, {what}"

    async def snapshots_create(self, done: list[str]) -> None:
        for _ in range(self.rng.randint(1, 4)):
            path = self.rng.choice(["/collections/docs/snapshots", "/snapshots",
                                    f"/collections/docs/shards/{self.rng.randrange(SHARDS)}/snapshots"])
            await self.client.ok("POST", path)
            done.append(path)

    async def round_snapshots(self, round_number: int) -> str:
        await self.snapshots_prune()
        done: list[str] = []
        work = asyncio.ensure_future(self.snapshots_create(done))
        pattern = self.rng.choice([None, "snapshots/**/.*.partial"])
        what = await self.kill_at(work, pattern, "snapshots", self.rng.uniform(0.0, 1.1))
        await self.restart()
        await self.data_check(None, (self.model.data,))
        for listed in await self.client.ok("GET", "/collections/docs/snapshots"):
            self.model.snapshots.setdefault(listed["name"], self.model.data)  # no write ran meanwhile
        return f"{len(done)} snapshots created, {what}"

    async def snapshots_prune(self) -> None:
        """Keep a few snapshots of each kind, so that disk use stays small over a long run."""
        for path in ["/snapshots", "/collections/docs/snapshots",
                     *(f"/collections/docs/shards/{s}/snapshots" for s in range(SHARDS))]:
            listed = await self.client.ok("GET", path)
            for old in listed[:-3]:
                await self.client.ok("DELETE", f"{path}/{old['name']}")
                self.model.snapshots.pop(old["name"], None)

    def snapshot_pick(self) -> str | None:
        """A known collection snapshot, preferably one whose data differs from the collection's."""
        names = sorted(self.model.snapshots)
        differing = [name for name in names if self.model.snapshots[name] != self.model.data]
        return self.rng.choice(differing or names) if names else None

    async def round_recovery(self, round_number: int, upload: bool) -> str:
        name = self.snapshot_pick()
        if name is None:  # every snapshot round so far was killed too early: make one
            name = (await self.client.ok("POST", "/collections/docs/snapshots"))["name"]
            self.model.snapshots[name] = self.model.data
        snapshot = self.model.snapshots[name]
        path = self.snapshots_dir / "docs" / name
        target = self.rng.choice(["docs", "copy"]) if upload else "docs"
        call: Callable[[], Awaitable[Any]]
        if upload:
            data = path.read_bytes()
            call = lambda: self.client.upload(f"/collections/{target}/snapshots/upload", data)  # noqa: E731
        else:
            call = lambda: self.client.call("PUT", "/collections/docs/snapshots/recover",  # noqa: E731
                                            {"location": path.as_uri()})
        work = asyncio.ensure_future(call())
        pattern = self.rng.choice([None, "collections/*/shards/*.new-*", "collections/*/shards/swap-*",
                                   "transient/*"])
        what = await self.kill_at(work, pattern, "upload" if upload else "recovery", self.rng.uniform(0.0, 1.1))
        await self.restart()
        if target == "docs":
            self.model.data = await self.data_check(None, (self.model.data, snapshot))
            return f"recovery of docs from {'an upload of ' if upload else ''}{name}, {what}"
        status, _ = await self.client.call("GET", "/collections/copy")
        if status == 200:
            assert await self.client.points_all("copy") == snapshot, "collection `copy` is not wholly the snapshot"
            await self.client.ok("DELETE", "/collections/copy")
        else:
            assert status == 404 and not (self.node.data_dir / "collections" / "copy").exists()
        await self.data_check(None, (self.model.data,))
        return f"upload of {name} into a new collection ({'created' if status == 200 else 'absent'}), {what}"

    async def round(self, round_number: int, kind: str) -> str:
        if kind == "writes":
            return await self.round_writes(round_number, None)
        if kind == "compaction":
            return await self.round_writes(round_number, "collections/docs/shards/*/points.msgpack.tmp")
        if kind == "snapshots":
            return await self.round_snapshots(round_number)
        return await self.round_recovery(round_number, upload=kind == "upload")


def kinds_planned(rng: random.Random) -> list[str]:
    """Every kind once first (writes first, the rest in a seeded order), then a seeded random kind per round."""
    rest = list(KINDS[1:])
    rng.shuffle(rest)
    return [KINDS[0], *rest] + [rng.choice(KINDS) for _ in range(10_000)]


@pytest.mark.timeout(SECONDS + 240)
async def test_kill_nine_at_random_instants(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("n1", peer_id=1, extra_args=NODE_ARGS)
    rng = random.Random(SEED)
    async with NodeClient(node.url) as client:
        torture = Torture(node, client, rng)
        await client.collection_create("docs", size=SIZE, shard_number=SHARDS)
        started = time.monotonic()
        try:
            for number, kind in enumerate(kinds_planned(rng)):
                if number >= len(KINDS) and time.monotonic() - started > SECONDS:
                    break
                line = await torture.round(number, kind)
                torture.model.rounds.append(f"{number} {kind}: {line}")
        except AssertionError as error:
            rounds = "\n".join(torture.model.rounds[-30:])
            raise AssertionError(f"{error}\nround {len(torture.model.rounds)} failed; replay the plan with "
                                 f"SHARDSIM_TORTURE_SEED={SEED}; rounds before it:\n{rounds}") from None
    print(f"seed {SEED}, {len(torture.model.rounds)} rounds:", *torture.model.rounds, sep="\n")  # shown by -s
    kinds_run = {line.split()[1].rstrip(":") for line in torture.model.rounds}
    assert kinds_run == set(KINDS), kinds_run
