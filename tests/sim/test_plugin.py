"""The pytest plugin's `shardsim_sim`: one case over many seeds (the README's example, run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim import sim_unavailable

if sim_unavailable:
    pytest.skip(sim_unavailable, allow_module_level=True)

from examples.test_replication_sim import test_isolated_replica_is_recovered_in_simulation  # noqa: E402, F401


def test_a_failing_case_says_its_seed(shardsim_sim):
    async def case(cluster, nemesis):
        await nemesis.node_kill("n2")
        assert cluster.node_alive("n2"), "n2 is down"

    with pytest.raises(AssertionError) as failure:
        shardsim_sim(case, seed=4, nodes=2)
    assert "n2 is down" in str(failure.value) and any("seed 4" in note for note in failure.value.__notes__)


def test_the_simulated_cluster_keeps_each_node_log_and_data_in_the_run_folder(shardsim_sim, tmp_path: Path):
    async def case(cluster, nemesis):
        return cluster.node_names()

    assert shardsim_sim(case, seed=1, nodes=2) == ["n1", "n2"]
    folder = tmp_path / "sim-seed1"
    assert {"n1.log", "n2.log", "coordinator.log", "proxy.log", "coordinator.sqlite"} <= {p.name for p in folder.iterdir()}
    assert (folder / "n1" / "data" / "node.json").exists()
