"""The Toxiproxy v2 HTTP API, spoken raw: every endpoint, status code, JSON shape and error.

These tests use plain aiohttp requests so that they pin the wire format a real Toxiproxy client sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from cluster.proxy.server import ProxyServer
from tests.cluster.proxy.conftest import Connections, TcpServer, read_exactly


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.url + path, json=body, data=raw, headers=headers
        ) as response:
            text = await response.text()
            if response.content_type == "application/json" and text:
                return response.status, await response.json()
            return response.status, text


@pytest.fixture
async def api(proxy_server: ProxyServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield Api(session, proxy_server.url)


async def proxy_new(api: Api, tcp_server: TcpServer, name: str = "n1->n2", **fields: Any) -> dict:
    status, body = await api.call(
        "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": tcp_server.address, **fields}
    )
    assert status == 201, body
    return body


async def test_version_answers_a_version_string(api: Api) -> None:
    status, body = await api.call("GET", "/version")
    assert status == 200
    assert isinstance(body["version"], str) and body["version"].startswith("2.")


async def test_create_answers_201_with_the_proxy_and_the_real_port(
    api: Api, tcp_server: TcpServer, connections: Connections
) -> None:
    body = await proxy_new(api, tcp_server)
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["name"] == "n1->n2" and body["enabled"] is True and body["toxics"] == []
    assert body["upstream"] == tcp_server.address
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    reader, writer = await connections.open(body["listen"])
    writer.write(b"ping")
    assert await read_exactly(reader, 4) == b"ping"


async def test_create_disabled_does_not_listen(api: Api, tcp_server: TcpServer) -> None:
    body = await proxy_new(api, tcp_server, enabled=False)
    assert body["enabled"] is False
    assert body["listen"] == "127.0.0.1:0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "a", "listen": "127.0.0.1:0"}, "missing required field: upstream"),
        ([1, 2], "bad request body"),
        ({"name": "a", "upstream": "no-port"}, "bad request body"),
        ({"name": 5, "upstream": "127.0.0.1:1"}, "bad request body"),
    ],
)
async def test_create_rejects_bad_bodies_with_400(api: Api, body: Any, message: str) -> None:
    status, answer = await api.call("POST", "/proxies", body)
    assert status == 400
    assert answer["status"] == 400 and answer["error"].startswith(message)


async def test_create_rejects_invalid_json_with_400(api: Api) -> None:
    status, answer = await api.call("POST", "/proxies", raw=b"{not json")
    assert (status, answer["status"]) == (400, 400)
    assert answer["error"].startswith("bad request body")


async def test_create_twice_answers_409(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    status, answer = await api.call("POST", "/proxies", {"name": "n1->n2", "upstream": tcp_server.address})
    assert (status, answer) == (409, {"error": "proxy already exists", "status": 409})


async def test_create_on_a_taken_port_answers_500(api: Api, tcp_server: TcpServer) -> None:
    first = await proxy_new(api, tcp_server, name="a")
    status, answer = await api.call(
        "POST", "/proxies", {"name": "b", "listen": first["listen"], "upstream": tcp_server.address}
    )
    assert (status, answer["status"]) == (500, 500)
    assert (await api.call("GET", "/proxies/b"))[0] == 404


async def test_index_and_show(api: Api, tcp_server: TcpServer) -> None:
    a = await proxy_new(api, tcp_server, name="a")
    b = await proxy_new(api, tcp_server, name="b")
    status, index = await api.call("GET", "/proxies")
    assert status == 200 and index == {"a": a, "b": b}
    assert await api.call("GET", "/proxies/a") == (200, a)


async def test_unknown_proxy_answers_404_everywhere(api: Api) -> None:
    not_found = {"error": "proxy not found", "status": 404}
    for method, path, body in [
        ("GET", "/proxies/nope", None),
        ("PATCH", "/proxies/nope", {"enabled": False}),
        ("POST", "/proxies/nope", {"enabled": False}),
        ("DELETE", "/proxies/nope", None),
        ("GET", "/proxies/nope/toxics", None),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}),
        ("GET", "/proxies/nope/toxics/t", None),
        ("PATCH", "/proxies/nope/toxics/t", {"toxicity": 0.5}),
        ("DELETE", "/proxies/nope/toxics/t", None),
    ]:
        assert await api.call(method, path, body) == (404, not_found), (method, path)


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_update_disables_and_enables(
    api: Api, tcp_server: TcpServer, connections: Connections, method: str
) -> None:
    created = await proxy_new(api, tcp_server)
    status, body = await api.call(method, "/proxies/n1->n2", {"enabled": False})
    assert status == 200 and body["enabled"] is False and body["listen"] == created["listen"]
    with pytest.raises(ConnectionRefusedError):
        await connections.open(created["listen"])
    status, body = await api.call(method, "/proxies/n1->n2", {"enabled": True})
    assert status == 200 and body["enabled"] is True and body["listen"] == created["listen"]
    reader, writer = await connections.open(created["listen"])
    writer.write(b"back")
    assert await read_exactly(reader, 4) == b"back"


async def test_update_of_listen_restarts_on_the_new_address(
    api: Api, tcp_server: TcpServer, connections: Connections
) -> None:
    created = await proxy_new(api, tcp_server)
    old_reader, _ = await connections.open(created["listen"])
    status, body = await api.call("PATCH", "/proxies/n1->n2", {"listen": "127.0.0.1:0"})
    assert status == 200 and body["enabled"] is True and body["listen"] != created["listen"]
    assert await old_reader.read() == b""  # the open connection was dropped
    with pytest.raises(ConnectionRefusedError):
        await connections.open(created["listen"])
    reader, writer = await connections.open(body["listen"])
    writer.write(b"moved")
    assert await read_exactly(reader, 5) == b"moved"


async def test_update_rejects_a_bad_body(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    status, answer = await api.call("PATCH", "/proxies/n1->n2", raw=b"")
    assert (status, answer) == (400, {"error": "bad request body: EOF", "status": 400})
    status, answer = await api.call("PATCH", "/proxies/n1->n2", {"enabled": "yes"})
    assert (status, answer["status"]) == (400, 400)


async def test_delete_answers_204_and_stops_listening(
    api: Api, tcp_server: TcpServer, connections: Connections
) -> None:
    created = await proxy_new(api, tcp_server)
    status, text = await api.call("DELETE", "/proxies/n1->n2")
    assert (status, text) == (204, "")
    assert (await api.call("GET", "/proxies"))[1] == {}
    with pytest.raises(ConnectionRefusedError):
        await connections.open(created["listen"])


async def test_toxic_create_applies_defaults(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    status, toxic = await api.call("POST", "/proxies/n1->n2/toxics", {"type": "latency", "attributes": {"latency": 5}})
    assert status == 200
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 5, "jitter": 0},
    }
    status, proxy = await api.call("GET", "/proxies/n1->n2")
    assert proxy["toxics"] == [toxic]


async def test_toxic_create_keeps_given_fields(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    body = {"name": "cut", "type": "limit_data", "stream": "upstream", "toxicity": 0.5, "attributes": {"bytes": 9}}
    status, toxic = await api.call("POST", "/proxies/n1->n2/toxics", body)
    assert status == 200 and toxic == body


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "bogus"}, 400, "invalid toxic type"),
        ({"stream": "sideways", "type": "latency"}, 400, "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, 400, "bad request body"),
        ({"type": "latency", "toxicity": "high"}, 400, "bad request body"),
        ({"type": "latency"}, 409, "toxic already exists"),
    ],
)
async def test_toxic_create_errors(api: Api, tcp_server: TcpServer, body: dict, status: int, message: str) -> None:
    await proxy_new(api, tcp_server)
    assert (await api.call("POST", "/proxies/n1->n2/toxics", {"type": "latency"}))[0] == 200
    answer_status, answer = await api.call("POST", "/proxies/n1->n2/toxics", body)
    assert (answer_status, answer["status"]) == (status, status)
    assert answer["error"].startswith(message)


async def test_toxics_index_and_show(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    _, down = await api.call("POST", "/proxies/n1->n2/toxics", {"type": "noop"})
    _, up = await api.call("POST", "/proxies/n1->n2/toxics", {"type": "noop", "stream": "upstream"})
    assert await api.call("GET", "/proxies/n1->n2/toxics") == (200, [up, down])
    assert await api.call("GET", "/proxies/n1->n2/toxics/noop_upstream") == (200, up)
    assert await api.call("GET", "/proxies/n1->n2/toxics/nope") == (
        404,
        {"error": "toxic not found", "status": 404},
    )


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_toxic_update_changes_attributes_and_toxicity_only(api: Api, tcp_server: TcpServer, method: str) -> None:
    await proxy_new(api, tcp_server)
    await api.call("POST", "/proxies/n1->n2/toxics", {"type": "latency", "attributes": {"latency": 5, "jitter": 2}})
    status, toxic = await api.call(
        method,
        "/proxies/n1->n2/toxics/latency_downstream",
        {"attributes": {"latency": 50}, "toxicity": 0.25, "stream": "upstream", "type": "noop"},
    )
    assert status == 200
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.25,
        "attributes": {"latency": 50, "jitter": 2},
    }
    assert (await api.call("GET", "/proxies/n1->n2/toxics/latency_downstream"))[1] == toxic
    assert (await api.call(method, "/proxies/n1->n2/toxics/nope", {"toxicity": 1}))[0] == 404


async def test_toxic_delete(api: Api, tcp_server: TcpServer) -> None:
    await proxy_new(api, tcp_server)
    await api.call("POST", "/proxies/n1->n2/toxics", {"type": "noop"})
    assert await api.call("DELETE", "/proxies/n1->n2/toxics/noop_downstream") == (204, "")
    assert await api.call("GET", "/proxies/n1->n2/toxics") == (200, [])
    assert (await api.call("DELETE", "/proxies/n1->n2/toxics/noop_downstream"))[0] == 404


async def test_populate_creates_keeps_and_replaces_by_name(api: Api, tcp_server: TcpServer) -> None:
    kept = await proxy_new(api, tcp_server, name="kept")
    replaced = await proxy_new(api, tcp_server, name="replaced")
    for name in ("kept", "replaced"):
        await api.call("POST", f"/proxies/{name}/toxics", {"type": "noop"})
    status, body = await api.call(
        "POST",
        "/populate",
        [
            {"name": "kept", "listen": kept["listen"], "upstream": tcp_server.address},
            {"name": "replaced", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
            {"name": "new", "listen": "127.0.0.1:0", "upstream": tcp_server.address, "enabled": False},
        ],
    )
    assert status == 201 and set(body) == {"proxies"}
    by_name = {proxy["name"]: proxy for proxy in body["proxies"]}
    assert [proxy["name"] for proxy in body["proxies"]] == ["kept", "replaced", "new"]
    assert by_name["kept"]["toxics"] != [] and by_name["kept"]["listen"] == kept["listen"]
    assert by_name["replaced"]["toxics"] == [] and by_name["replaced"]["upstream"] == "127.0.0.1:9"
    assert by_name["replaced"]["listen"] != replaced["listen"]
    assert by_name["new"]["enabled"] is False
    assert set((await api.call("GET", "/proxies"))[1]) == {"kept", "replaced", "new"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x"}, "bad request body"),
        ([{"name": "ok", "upstream": "127.0.0.1:1"}, {"upstream": "127.0.0.1:1"}], "missing required field: name at proxy 2"),
        ([{"name": "x"}], "missing required field: upstream at proxy 1"),
    ],
)
async def test_populate_rejects_bad_bodies_and_changes_nothing(api: Api, body: Any, message: str) -> None:
    status, answer = await api.call("POST", "/populate", body)
    assert (status, answer["status"]) == (400, 400)
    assert answer["error"].startswith(message)
    assert (await api.call("GET", "/proxies"))[1] == {}


async def test_reset_enables_everything_and_removes_every_toxic(
    api: Api, tcp_server: TcpServer, connections: Connections
) -> None:
    created = await proxy_new(api, tcp_server)
    await api.call("POST", "/proxies/n1->n2/toxics", {"type": "timeout"})
    await api.call("PATCH", "/proxies/n1->n2", {"enabled": False})
    assert await api.call("POST", "/reset") == (204, "")
    status, proxy = await api.call("GET", "/proxies/n1->n2")
    assert proxy["enabled"] is True and proxy["toxics"] == [] and proxy["listen"] == created["listen"]
    reader, writer = await connections.open(created["listen"])
    writer.write(b"healed")
    assert await read_exactly(reader, 6) == b"healed"


def metrics_samples(text: str) -> dict[tuple[str, str, str], int]:
    """(family, proxy, direction or "") -> value, from Prometheus text."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        series, value = line.rsplit(" ", 1)
        family, labels_text = series.rstrip("}").split("{", 1)
        labels = dict(pair.split("=", 1) for pair in labels_text.split('",'))
        labels = {key: value.strip('"') for key, value in labels.items()}
        samples[(family, labels["proxy"], labels.get("direction", ""))] = int(value)
    return samples


async def test_metrics_count_bytes_and_connections_per_proxy_and_direction(
    api: Api, tcp_server: TcpServer, connections: Connections
) -> None:
    created = await proxy_new(api, tcp_server)
    reader, writer = await connections.open(created["listen"])
    writer.write(b"x" * 1000)
    await read_exactly(reader, 1000)
    async with api.session.get(api.url + "/metrics") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        samples = metrics_samples(await response.text())
    assert samples[("toxiproxy_proxy_received_bytes_total", "n1->n2", "upstream")] == 1000
    assert samples[("toxiproxy_proxy_sent_bytes_total", "n1->n2", "upstream")] == 1000
    assert samples[("toxiproxy_proxy_received_bytes_total", "n1->n2", "downstream")] == 1000
    assert samples[("toxiproxy_proxy_sent_bytes_total", "n1->n2", "downstream")] == 1000
    assert samples[("shardsim_proxy_connections_total", "n1->n2", "")] == 1
    assert samples[("shardsim_proxy_connections_open", "n1->n2", "")] == 1


async def test_browser_user_agents_get_403(api: Api) -> None:
    status, text = await api.call("GET", "/version", headers={"User-Agent": "Mozilla/5.0"})
    assert status == 403 and "User agent not allowed" in text


async def test_wrong_method_and_unknown_route_answer_json_errors(api: Api) -> None:
    assert (await api.call("GET", "/nowhere"))[1]["status"] == 404
    status, body = await api.call("PUT", "/proxies")
    assert (status, body["status"]) == (405, 405)
