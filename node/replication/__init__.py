"""The node's part in a cluster: the agent that follows the coordinator's state and routes updates and
reads to replicas, and both ends of a shard transfer by snapshot streaming with its progress reports.
"""
