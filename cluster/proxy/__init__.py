"""The fault proxy: an asyncio TCP proxy speaking the Toxiproxy v2 HTTP API.

It sits on every link of a shardsim cluster (one proxy per directed link) so that scenarios can cut,
slow, slice or reset the bytes between processes, with any Toxiproxy client or with `ToxiproxyClient`.
`server.ProxyServer` runs it; `client.ToxiproxyClient` drives it (or a real Toxiproxy) from asyncio code.
"""
