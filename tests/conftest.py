"""Shared fixtures: real node processes on free 127.0.0.1 ports, always stopped by PID at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.processes import NodeProcess


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """`node_factory(name="n1", extra_args=[...])` starts a node process; all are stopped at teardown."""
    started: list[NodeProcess] = []

    def start(name: str = "n1", extra_args: list[str] | None = None, peer_id: int | None = None,
              port: int | None = None) -> NodeProcess:
        process = NodeProcess(tmp_path / name, port=port, extra_args=extra_args, peer_id=peer_id)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def node(node_factory: Callable[..., NodeProcess]) -> NodeProcess:
    """One standalone node process with peer id 1."""
    return node_factory("n1", peer_id=1)
