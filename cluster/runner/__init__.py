"""The scenario runner: scenarios, their context, the workload client, history, and the `run` command.

Scenario files import `Scenario`, `CollectionSpec` and `RunContext` from here, and the phase-keyed
predicates `at_stream_fraction`, `at_phase`, `at_queued`.
"""

from cluster.runner.context import RunContext, ScenarioError
from cluster.runner.events import at_phase, at_queued, at_stream_fraction
from cluster.runner.scenario import CollectionSpec, Scenario

__all__ = ["CollectionSpec", "RunContext", "Scenario", "ScenarioError", "at_phase", "at_queued",
           "at_stream_fraction"]
