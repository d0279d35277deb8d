"""The node's data: collections on disk, each shard's points in memory with its write-ahead log.

Also what clients send, parsed and validated (vectors, updates, filters, payload paths), the shard
operations they become, and the reads a shard answers (retrieve, scroll, scored queries).
"""
