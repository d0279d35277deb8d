"""JSON bodies as Qdrant takes them: what it accepts that a stricter server would refuse, and the reverse
(issue 14 defects 5 and 6; the refusals themselves are in tests/torture/test_hostile_node.py).

Source facts: Qdrant's validating `Json` extractor (actix-web-validator 7) builds actix's `JsonBody` with
`ctype_required = false`, so a JSON body is read whatever its Content-Type, or with none; its limit is
`service.max_request_size_mb`, 32 MiB (`src/actix/mod.rs`), so a 2 MiB body is an ordinary one; serde_json
has no NaN or Infinity tokens (400, the data unchanged). serde reads `1e39` into an f32 as infinity (`as`
cast) and Qdrant stores the point (200), after which scores against it are not JSON; shardsim differs on
purpose and refuses a vector value outside float32 with 400 (README, "Where shardsim differs from Qdrant").
"""

from __future__ import annotations

import io
import json

import pytest

from tests.helpers import points_make
from tests.node.client import NodeClient


async def raw_call(client: NodeClient, method: str, path: str, body: bytes,
                   headers: dict[str, str]) -> tuple[int, dict]:
    assert client.session is not None
    skip = [] if "Content-Type" in headers else ["Content-Type"]
    async with client.session.request(method, client.url + path, data=io.BytesIO(body), headers=headers,
                                      skip_auto_headers=skip) as response:
        return response.status, json.loads(await response.read())


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/x-anything"}])
async def test_a_json_body_is_read_whatever_its_content_type(client: NodeClient, headers: dict[str, str]) -> None:
    await client.collection_create("docs")
    body = json.dumps({"points": points_make(range(5))}).encode()
    status, reply = await raw_call(client, "PUT", "/collections/docs/points?wait=true", body, headers)
    assert (status, reply["result"]["status"]) == (200, "completed"), reply
    assert await client.count("docs") == 5


async def test_a_two_mebibyte_body_is_an_ordinary_one(client: NodeClient) -> None:
    await client.collection_create("docs")
    points = [{"id": i, "vector": [0.5, 1.5, 2.5, 3.5], "payload": {"text": "x" * 1000}} for i in range(2200)]
    body = json.dumps({"points": points}).encode()
    assert len(body) > 2 << 20
    status, reply = await raw_call(client, "PUT", "/collections/docs/points?wait=true", body,
                                   {"Content-Type": "application/json"})
    assert status == 200, reply
    assert await client.count("docs") == 2200


async def test_nan_and_infinity_are_refused_and_nothing_is_written(client: NodeClient) -> None:
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(3)))
    before = await client.points_all("docs")
    for body in (b'{"points": [{"id": 9, "vector": [NaN, 1, 2, 3]}]}',
                 b'{"points": [{"id": 9, "vector": [1, 2, 3, 4], "payload": {"x": Infinity}}]}',
                 b'{"points": [{"id": 9, "vector": [1, 2, 3, -Infinity]}]}'):
        status, reply = await raw_call(client, "PUT", "/collections/docs/points?wait=true", body, {})
        assert status == 400 and reply["status"]["error"].startswith("Format error in JSON body: "), reply
    status, reply = await raw_call(client, "POST", "/collections/docs/points/search",
                                   b'{"vector": [NaN, 1, 2, 3], "limit": 3}', {})
    assert (status, reply["status"]["error"]) == (400, "Format error in JSON body: expected value at line 1 "
                                                       "column 13")
    assert await client.points_all("docs") == before


async def test_a_vector_value_beyond_float32_is_refused_and_nothing_is_written(client: NodeClient) -> None:
    """A deliberate difference from Qdrant (which stores infinity): a client error, in Qdrant's envelope."""
    await client.collection_create("docs")
    await client.points_upsert("docs", points_make(range(3)))
    before = await client.points_all("docs")
    for body in (b'{"points": [{"id": 1, "vector": [1e39, 0.5, 0.5, 0.5]}]}',
                 b'{"points": [{"id": 9, "vector": [0.5, 0.5, 0.5, -3.5e38]}]}',
                 b'{"batch": {"ids": [9], "vectors": [[0.5, 1e39, 0.5, 0.5]]}}'):
        status, reply = await raw_call(client, "PUT", "/collections/docs/points?wait=true", body, {})
        assert status == 400, reply
        assert set(reply) == {"status", "time"} and isinstance(reply["time"], float), reply
        assert reply["status"]["error"].startswith("Wrong input: ") and "float32" in reply["status"]["error"], reply
    assert await client.points_all("docs") == before
