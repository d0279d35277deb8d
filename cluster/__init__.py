"""Everything around the nodes: the coordinator, the launcher, the fault proxy, the nemesis, the event bus,
the scenario runner with its checkers and report, the live page and the `shardsim` CLI.
"""
