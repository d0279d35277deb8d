"""One shardsim node: a Qdrant-compatible REST API over shards kept in memory with a write-ahead log.

`api/` serves HTTP, `storage/` holds the data, `snapshots/` writes and restores snapshot files, and
`replication/` is the node's part in a cluster; `protocol` and `eventbus` are shared with `cluster/`.
"""
