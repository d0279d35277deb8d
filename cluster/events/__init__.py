"""The event bus, cluster side: the embedded broker, subscribing, the recorder, the live view and its CLIs.

Publishing lives in `node.eventbus` (nodes publish too, and `node/` never imports `cluster/`); everything
that reads the bus is here, one module each: `broker` (embedded amqtt), `subscriber` (`events_stream`),
`recorder` (`Recorder`), `view` and `view_text` (`ClusterView`), `cli` (`events_main`, `watch_main`).
Nothing is imported here, so `shardsim events` does not pay for loading amqtt. Topics, payloads and kinds
are described in docs/events.md.
"""
