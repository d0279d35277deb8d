"""Snapshot files: the tar format with its manifest and digests, naming and checksums on disk,
creating collection, shard and full snapshots, and restoring them (URL, file, upload) atomically.
"""
