"""Typed keys under which the node's objects live in the aiohttp app and request (aiohttp's AppKey)."""

from aiohttp import web

from node.service import Node

NODE = web.AppKey("node", Node)
PLAIN_ERRORS = "plain_errors"


def node_of(request: web.Request) -> Node:
    return request.app[NODE]
