"""Typed keys under which the node's objects live in the aiohttp app and request (aiohttp's AppKey)."""

from aiohttp import web

from node.errors import standalone_mode
from node.replication.agent import ClusterAgent
from node.service import Node

NODE = web.AppKey("node", Node)
AGENT = web.AppKey("agent", ClusterAgent)  # present on a clustered node only
PLAIN_ERRORS = web.RequestKey("plain_errors", bool)  # a download: errors in plain text, as actix


def node_of(request: web.Request) -> Node:
    return request.app[NODE]


def agent_of(request: web.Request) -> ClusterAgent:
    """The clustered node's agent; a standalone node answers as Qdrant does without distributed mode."""
    agent = request.app.get(AGENT)
    if agent is None:
        raise standalone_mode()
    return agent
