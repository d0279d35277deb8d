"""Fixtures for the node's tests: an HTTP client bound to the standalone node process of `node`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.node.client import NodeClient
from tests.processes import NodeProcess


@pytest.fixture
async def client(node: NodeProcess) -> AsyncIterator[NodeClient]:
    async with NodeClient(node.url) as bound:
        yield bound
