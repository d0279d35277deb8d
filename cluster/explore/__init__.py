"""The explorer: schedules as data, generated from seeds, run by the scenario runner, judged, mapped, shrunk.

Owns the schedule format (`schedule`), its translation into a scenario file (`codegen`, run through the
steps library `steps` and the faults of `faults`), the seeded generator (`generate`), the coverage map of
fault x phase x kind x priority (`coverage`), shrinking (`shrink`), the worker processes that run schedules
in real mode or in simulation (`workers`), and the `shardsim replay` and `shardsim explore` commands (`cli`).
"""
