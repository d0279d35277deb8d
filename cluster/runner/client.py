"""The workload client: every operation a scenario makes, recorded as `invoke` then `ok`/`fail`/`info`.

Classification follows what the client can know: a 2xx is `ok`; a refusal that certainly changed nothing
(a 4xx, a connection refused before anything was sent, or a node error marked `X-Shardsim-Definite: true`)
is `fail`; anything else (a timeout, a connection lost mid-request, a 5xx) is `info`: the operation may or
may not have happened. Each operation is also published on the event bus (`op.invoke|ok|fail|info`).

aiohttp sends an idempotent request (PUT, DELETE) a second time when the server drops a kept-alive
connection; a refused connection on that second try comes after the first one reached the server. The
session's `request_trace()` notes, per request, that its headers went out, so such a refusal is `info`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import aiohttp

from cluster.history import HistoryWriter
from node import jsonwire

DEFINITE_HEADER = "X-Shardsim-Definite"


@dataclass
class Outcome:
    completion: str  # ok | fail | info
    status: int | None
    body: Any
    error: str | None


def request_trace() -> aiohttp.TraceConfig:
    """Put on the client's session (`ClientSession(trace_configs=[request_trace()])`): marks in the dict
    given as `trace_request_ctx` that the request's headers were sent."""
    trace = aiohttp.TraceConfig()

    async def headers_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
        if isinstance(context.trace_request_ctx, dict):
            context.trace_request_ctx["sent"] = True

    trace.on_request_headers_sent.append(headers_sent)
    return trace


class WorkloadClient:
    def __init__(self, session: aiohttp.ClientSession, history: HistoryWriter, events: Any,
                 timeout_s: float = 10.0) -> None:
        self.session = session
        self.history = history
        self.events = events
        self.timeout_s = timeout_s
        self.counts = {"ok": 0, "fail": 0, "info": 0}

    async def call(self, method: str, url: str, **kwargs: Any) -> Outcome:
        timeout = aiohttp.ClientTimeout(total=kwargs.pop("timeout_s", self.timeout_s))
        attempt: dict[str, bool] = {"sent": False}
        try:
            async with self.session.request(method, url, timeout=timeout, trace_request_ctx=attempt,
                                            **kwargs) as response:
                try:
                    body: Any = await response.json(content_type=None, loads=jsonwire.std_loads)
                except ValueError:
                    body = await response.text()
                if response.status < 300:
                    return Outcome("ok", response.status, body, None)
                definite = response.headers.get(DEFINITE_HEADER) == "true" or response.status < 500
                error = body.get("status", {}).get("error") if isinstance(body, dict) else str(body)
                return Outcome("fail" if definite else "info", response.status, body,
                               f"HTTP {response.status}: {error}")
        except aiohttp.ClientConnectorError as error:
            if attempt["sent"]:  # aiohttp's second try: the first one was sent and may have been applied
                return Outcome("info", None, None, f"connection lost, then refused on the retry: {error}")
            return Outcome("fail", None, None, f"connection refused: {error}")
        except TimeoutError:
            return Outcome("info", None, None, "timed out")
        except (aiohttp.ClientError, OSError) as error:
            return Outcome("info", None, None, f"{type(error).__name__}: {error}")

    async def op(self, process: int, f: str, value: Any, method: str, url: str,
                 result_of: Any = None, **kwargs: Any) -> Outcome:
        invoke = self.history.op_invoke(process, f, value)
        self.events.publish("op.invoke", process=process, op_id=invoke["op_id"], f=f)
        outcome = await self.call(method, url, **kwargs)
        result = value
        if outcome.completion == "ok" and result_of is not None:
            result = result_of(outcome.body)
        self.history.op_complete(invoke, outcome.completion, result, outcome.error)  # type: ignore[arg-type]
        self.counts[outcome.completion] += 1
        self.events.publish(f"op.{outcome.completion}", process=process, op_id=invoke["op_id"], f=f,
                            error=outcome.error)
        return outcome

    # -- the operations scenarios use ---------------------------------------------------------------------
    async def upsert(self, process: int, node_url: str, collection: str, points: list[dict[str, Any]]) -> Outcome:
        value = {"collection": collection, "points": points}
        return await self.op(process, "upsert", value, "PUT", f"{node_url}/collections/{collection}/points"
                             f"?wait=true", json={"points": points})

    async def delete(self, process: int, node_url: str, collection: str, ids: list[Any]) -> Outcome:
        value = {"collection": collection, "ids": ids}
        return await self.op(process, "delete", value, "POST",
                             f"{node_url}/collections/{collection}/points/delete?wait=true", json={"points": ids})

    async def read(self, process: int, node_url: str, collection: str, ids: list[Any]) -> Outcome:
        def result_of(body: Any) -> dict[str, Any]:
            points = {str(p["id"]): {"vector": p.get("vector"), "payload": p.get("payload")}
                      for p in body["result"]}
            return {"collection": collection, "points": points}
        return await self.op(process, "read", {"collection": collection, "ids": ids}, "POST",
                             f"{node_url}/collections/{collection}/points", result_of=result_of,
                             json={"ids": ids, "with_payload": True, "with_vector": True})

    async def snapshot_create(self, process: int, node_url: str, collection: str, shard: int | None,
                              peer: int) -> Outcome:
        path = f"/collections/{collection}/snapshots" if shard is None else \
            f"/collections/{collection}/shards/{shard}/snapshots"
        value = {"collection": collection, "shard": shard, "peer": peer}

        def result_of(body: Any) -> dict[str, Any]:
            return {**value, "name": body["result"]["name"], "checksum": body["result"].get("checksum")}
        return await self.op(process, "snapshot_create", value, "POST", f"{node_url}{path}?wait=true",
                             result_of=result_of, timeout_s=60)

    async def snapshot_recover(self, process: int, node_url: str, collection: str, shard: int | None,
                               peer: int, name: str, location: str, priority: str | None,
                               checksum: str | None = None) -> Outcome:
        base = f"/collections/{collection}" + ("" if shard is None else f"/shards/{shard}")
        body: dict[str, Any] = {"location": location}
        if priority is not None:
            body["priority"] = priority
        if checksum is not None:
            body["checksum"] = checksum
        value = {"collection": collection, "shard": shard, "peer": peer, "name": name, "priority": priority,
                 "checksum": checksum, "source": "location", "corrupt": False}
        return await self.op(process, "snapshot_recover", value, "PUT",
                             f"{node_url}{base}/snapshots/recover?wait=true", json=body, timeout_s=120)

    async def snapshot_upload(self, process: int, node_url: str, collection: str, shard: int | None, peer: int,
                              name: str, data: bytes, priority: str | None, checksum: str | None = None,
                              corrupt: bool = False) -> Outcome:
        base = f"/collections/{collection}" + ("" if shard is None else f"/shards/{shard}")
        query = "?wait=true" + (f"&priority={priority}" if priority else "") + \
            (f"&checksum={checksum}" if checksum else "")
        form = aiohttp.FormData()
        form.add_field("snapshot", io.BytesIO(data), filename=name, content_type="application/octet-stream")
        value = {"collection": collection, "shard": shard, "peer": peer, "name": name, "priority": priority,
                 "checksum": checksum, "source": "upload", "corrupt": corrupt}
        return await self.op(process, "snapshot_recover", value, "POST",
                             f"{node_url}{base}/snapshots/upload{query}", data=form, timeout_s=120)
