"""Machinery of the hostile batteries: a case, how it is sent and judged, and what must not change.

A `Case` is one request (method, path as sent on the wire, raw body bytes, headers) with the answer it must
get: the status, and the error text in the envelope the server speaks (`node`: Qdrant's
`{"status": {"error": ...}, "time": t}`; `coordinator`: the same plus `kind`; `proxy`: Toxiproxy's
`{"error": ..., "status": n}`; `plain`: the plain text of a snapshot download's error, as actix gives it).
`text` is the whole message, or its start when it ends with `...`.

Around every case the test takes an `Observation` (the data digests of every node and the size of every file
under the scratch root, logs aside) before and after: a refused request changes neither, so nothing is
written, in the data folders or anywhere else under the root (the processes run with the root as their
working directory, so a relative path would land there too).
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from node.jsonwire import serde_error

TIMEOUT = aiohttp.ClientTimeout(total=60)
MUTATIONS = int(os.environ.get("SHARDSIM_TORTURE_MUTATIONS", "30"))
SEED = int(os.environ.get("SHARDSIM_TORTURE_SEED", "14"))
JSON = {"Content-Type": "application/json"}
MSGPACK = {"Content-Type": "application/msgpack"}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    text: str  # the error's text; a prefix when it ends with "..."
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    shape: str = "node"  # node | coordinator | proxy | plain
    target: str = "node"  # which server of the fixture gets it (node name, "coordinator", "proxy")


@dataclass(frozen=True)
class Observation:
    digests: dict[str, Any]
    files: dict[str, int]


def files_sized(root: Path) -> dict[str, int]:
    """Every file under `root` with its size, logs aside (a refusal may be logged)."""
    return {str(path.relative_to(root)): path.stat().st_size for path in root.rglob("*")
            if path.is_file() and not path.name.endswith(".log")}


async def chunks(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


async def send(session: aiohttp.ClientSession, base_url: str, case: Case) -> tuple[int, str, bytes]:
    """The case's request as written: the path not re-quoted, no header added (a `Transfer-Encoding: chunked`
    case is sent in chunks with no length); (status, content type, raw body)."""
    url = yarl.URL(base_url + case.path, encoded=True)
    headers = dict(case.headers)
    data: Any = None
    if case.body is not None:
        data = chunks(case.body) if headers.pop("Transfer-Encoding", None) else io.BytesIO(case.body)
    skip = [] if "Content-Type" in headers else ["Content-Type"]
    async with session.request(case.method, url, data=data, headers=headers, skip_auto_headers=skip) as response:
        return response.status, response.content_type, await response.read()


def judge(case: Case, status: int, content_type: str, raw: bytes) -> None:
    """The answer is the case's status, in the case's shape, with its text; always valid JSON unless plain."""
    assert status == case.status, f"{case.name}: HTTP {status} {raw[:300]!r}"
    if case.shape == "plain":
        found = raw.decode()
    else:
        assert content_type == "application/json", f"{case.name}: {content_type} {raw[:200]!r}"
        assert serde_error(raw) is None, f"{case.name}: not JSON: {raw[:200]!r}"
        body = json.loads(raw)
        if case.shape == "proxy":
            assert set(body) == {"error", "status"} and body["status"] == status, body
            found = body["error"]
        else:
            assert isinstance(body["status"], dict) and set(body["status"]) == {"error"}, body
            if case.shape == "node":
                assert set(body) == {"status", "time"} and isinstance(body["time"], float), body
            else:
                assert isinstance(body["kind"], str), body
            found = body["status"]["error"]
    if case.text.endswith("..."):
        assert found.startswith(case.text[:-3]), f"{case.name}: {found!r}"
    else:
        assert found == case.text, f"{case.name}: {found!r}"


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def multipart(boundary: str, field_name: str, data: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"x.snapshot\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def json_mutations(valid: bytes, count: int, seed: int) -> list[bytes]:
    """`count` seeded mutations of a valid body that serde_json refuses (each checked, so none writes)."""
    rng = random.Random(seed)
    pieces = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"\\ud800", b",", b"]", b"}", b"[", b"{", b'"',
              b"\\", b"\x00", b"\xff", b"01", b"tru", b"\xef\xbb\xbf", b"[" * 300]
    found: list[bytes] = []
    for _ in range(count * 50):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(body))
            if rng.random() < 0.7:
                body[at:at] = rng.choice(pieces)
            else:
                del body[at:at + rng.randint(1, 5)]
        if serde_error(bytes(body)) is not None:
            found.append(bytes(body))
            if len(found) == count:
                return found
    raise AssertionError("the mutations kept giving valid JSON")
