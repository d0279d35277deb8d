"""Deterministic simulation: the same scenarios, node, coordinator, proxy and checkers in one process, on a
seeded simulated event loop with virtual time (`shardsim run ... --sim`; docs/simulation.md).

It owns the simulated loop (`engine`, the one module that touches simloop), the in-memory event bus (`bus`),
the simulated processes and their boot (`hosts`), the `SimCluster` (`cluster`), per-host logs (`logs`),
running a scenario and checking that a seed replays byte for byte (`run`), and whether this interpreter can
simulate at all (`support`). Only `support` may be imported without simloop installed.
"""
