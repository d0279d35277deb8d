"""The live page `shardsim ui`: a small aiohttp server that follows the event bus and shows it in a browser.

`UiServer` subscribes to one cluster's MQTT events, keeps the last 5000 in a bounded buffer and pushes them to
every open page with Server-Sent Events; the page (one self-contained HTML document, no external resources)
folds them into peers, replica states, transfers, faults, decisions and a growing swimlane. `shardsim up` and
`shardsim run` embed it with `async with UiServer(...) as ui: print(ui.url)`.
"""

from cluster.ui.server import UiServer, ui_main

__all__ = ["UiServer", "ui_main"]
