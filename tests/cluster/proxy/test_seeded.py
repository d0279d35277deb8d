"""The proxy under a seeded `node.clock.Runtime` (issue 16): its random choices replay from the seed, and it
binds where a simulated network has no real sockets to read back.

Which connections a toxic with `toxicity < 1` applies to is drawn per link from a `random.Random` seeded from
the proxy's, itself seeded from `node.clock.rng()`: the same seed gives the same connections, another seed
others. Real sockets on 127.0.0.1, in-process.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.ports import site_port
from cluster.proxy.proxy import Proxy
from cluster.proxy.toxics import toxic_from_json
from node import clock
from tests.cluster.proxy.conftest import Connections, TcpServer, read_exactly

CONNECTIONS = 16
PAYLOAD = b"0123456789"
LIMIT_BYTES = 2


def seeded(seed: int) -> clock.Runtime:
    return clock.Runtime(random_source=random.Random(seed), simulated=True)


async def limited_connections(seed: int, tcp_server: TcpServer) -> list[bool]:
    """For each of CONNECTIONS connections in turn: whether a `limit_data` toxic of toxicity 0.5 cut it."""
    with clock.installed(seeded(seed)):
        proxy = Proxy("n1->n2", "127.0.0.1:0", tcp_server.address)
    proxy.toxic_add(toxic_from_json({"name": "cut", "type": "limit_data", "toxicity": 0.5,
                                     "attributes": {"bytes": LIMIT_BYTES}}))
    await proxy.start()
    connections = Connections()
    cut = []
    try:
        for _ in range(CONNECTIONS):
            reader, writer = await connections.open(proxy.listen)
            writer.write(PAYLOAD)
            try:
                cut.append(len(await read_exactly(reader, len(PAYLOAD))) < len(PAYLOAD))
            except asyncio.IncompleteReadError as error:
                assert len(error.partial) == LIMIT_BYTES
                cut.append(True)
    finally:
        await connections.close()
        await proxy.stop()
    return cut


async def test_the_same_seed_cuts_the_same_connections(tcp_server: TcpServer) -> None:
    first = await limited_connections(7, tcp_server)
    again = await limited_connections(7, tcp_server)
    other = await limited_connections(8, tcp_server)
    assert first == again
    assert first != other
    assert 0 < sum(first) < CONNECTIONS, "a toxicity of 0.5 cuts some connections, not all"


class ServerWithoutSockets:
    """What a simulated network's `create_server` returns: a listener with no real socket."""

    sockets: tuple[Any, ...] = ()
    closed = False

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


async def test_in_a_simulation_the_proxy_binds_the_given_port_without_reuse_address(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    servers: list[ServerWithoutSockets] = []

    async def create_server(protocol_factory: Any, host: str | None, port: int, **options: Any) -> Any:
        calls.append({"host": host, "port": port, **options})
        servers.append(ServerWithoutSockets())
        return servers[-1]

    monkeypatch.setattr(asyncio.get_running_loop(), "create_server", create_server)
    with clock.installed(seeded(1)):
        proxy = Proxy("n1->n2", "0.0.0.0:20001", "n2:6333")
        port_zero = Proxy("n1->n3", "0.0.0.0:0", "n3:6333")
    await proxy.start()
    assert proxy.enabled and proxy.listen == "0.0.0.0:20001"
    assert calls[-1] == {"host": "0.0.0.0", "port": 20001, "reuse_address": False}
    with pytest.raises(OSError, match="port 0"):
        await port_zero.start()
    assert not port_zero.enabled and servers[-1].closed
    await proxy.stop()


async def test_in_real_mode_the_proxy_binds_with_reuse_address(monkeypatch: pytest.MonkeyPatch) -> None:
    options: list[dict[str, Any]] = []

    async def create_server(protocol_factory: Any, host: str | None, port: int, **given: Any) -> Any:
        options.append(given)
        return ServerWithoutSockets()

    monkeypatch.setattr(asyncio.get_running_loop(), "create_server", create_server)
    proxy = Proxy("n1->n2", "127.0.0.1:20001", "127.0.0.1:6333")
    await proxy.start()
    await proxy.stop()
    assert options == [{"reuse_address": True}]


def test_a_site_s_port_is_the_one_given_or_for_port_0_the_one_bound() -> None:
    bound = SimpleNamespace(addresses=[("127.0.0.1", 41234)])
    simulated = SimpleNamespace(addresses=[])
    assert site_port(bound, 0) == 41234  # type: ignore[arg-type]
    assert site_port(bound, 8474) == 8474  # type: ignore[arg-type]
    assert site_port(simulated, 8474) == 8474  # type: ignore[arg-type]
    with pytest.raises(OSError, match="port 0"):
        site_port(simulated, 0)  # type: ignore[arg-type]
