"""The torture suite: hostile and malformed requests against real processes (issue 14 item 6).

`hostile.py` holds the machinery (a case, how it is sent and judged, the file-tree and data observations);
`test_hostile_node.py` sends the battery to a standalone node, `test_hostile_cluster.py` to a cluster's
coordinator, its nodes' internal routes and its fault proxy. Seeded and bounded: the seeded mutations run
`SHARDSIM_TORTURE_MUTATIONS` times (30 by default), with the seed in `SHARDSIM_TORTURE_SEED` (14).
"""
