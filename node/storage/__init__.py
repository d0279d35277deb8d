"""The node's data: collections on disk, each shard's points in memory with its write-ahead log.

Also the point formats clients send (parsing, validation) and the reads a shard answers (scroll, search).
"""
