"""The coordinator: the one writer of the cluster state (peers, collections, replica map, transfers).

`python -m cluster.coordinator --port 6300 --db runs/x/coordinator.sqlite` runs it as its own process.
"""
