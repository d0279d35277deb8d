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
            assert len(body["commit"]) == 40 and int(body["commit"], 16) >= 0  # a commit id's shape
        for path in ("/healthz", "/readyz", "/livez"):
            async with session.get(f"{node.url}{path}") as response:
                assert response.status == 200
    assert node.terminate() == 0


async def test_parsing_errors_read_as_qdrant_writes_them(node: NodeProcess) -> None:
    """Request-parsing errors: no kind prefix, serde's wording, `time: 0.0` (docs/qdrant-semantics.md
    section 1.1)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{node.url}/") as response:
            assert (await response.json())["title"] == "qdrant - vector search engine"
        async with session.put(f"{node.url}/collections/docs", json={"vectors": {"size": 2, "distance": "Dot"}}):
            pass
        for body, message in (({}, "missing field `location`"),
                              ({"location": 123}, "invalid type: integer `123`, expected a string")):
            async with session.put(f"{node.url}/collections/docs/snapshots/recover", json=body) as response:
                assert response.status == 400
                assert await response.json() == {"status": {"error": f"Format error in JSON body: {message}"},
                                                 "time": 0.0}
        async with session.put(f"{node.url}/collections/docs/points?wait=maybe", json={"points": []}) as response:
            reply = await response.json()
            assert response.status == 400 and reply["time"] == 0.0
            assert reply["status"]["error"].startswith("Deserialize error in query parameters: wait")
