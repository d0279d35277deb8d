"""The node process starts, answers Qdrant's root and health routes, and stops cleanly on SIGTERM."""

import aiohttp

from tests.processes import NodeProcess


async def test_root_health_and_sigterm(node: NodeProcess) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{node.url}/") as response:
            body = await response.json()
            assert response.status == 200
            assert body["version"].startswith("1.")
            assert "qdrant" in body["title"]
        for path in ("/healthz", "/readyz", "/livez"):
            async with session.get(f"{node.url}{path}") as response:
                assert response.status == 200
    assert node.terminate() == 0
