"""The node's HTTP face: the aiohttp app with its error-envelope middleware, and one module per resource.

Handlers parse and validate requests, call the node (`node.service.Node`) and answer in Qdrant's shapes.
"""
