"""The live page in a real browser (headless Chromium over the DevTools protocol).

It loads with everything inline, replays what the bus said before it was opened, shows a new replica state
within a second of its publication, draws a transfer's progress from `transfer.phase` bytes, lists the
decisions newest first, and reads well (a screenshot, kept next to the test's files).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

from cluster.ui import UiServer
from node.eventbus import EventPublisher
from node.retry import wait_until
from tests.cluster.ui.devtools import DevToolsPage
from tests.cluster.ui.sample_events import COLLECTION, publish_story

SHOW_TIMEOUT_S = 5.0
SHOW_LATENCY_S_MAX = 1.0


async def open_live(page: DevToolsPage, ui: UiServer) -> None:
    """Load the page and wait until its event stream said hello."""
    await page.navigate(ui.url)
    await page.evaluate(wait_for_js("window.shardsimUi && window.shardsimUi.live"), timeout_s=SHOW_TIMEOUT_S + 1)


def wait_for_js(condition: str, timeout_s: float = SHOW_TIMEOUT_S, ready_flag: str = "") -> str:
    """A page expression: a promise of the milliseconds until `condition` held (checked on every DOM change).

    With `ready_flag`, `window[ready_flag]` is true once the watcher is in place (the promise's executor runs
    at once and whole, so any later evaluation sees both)."""
    ready = f"window[{json.dumps(ready_flag)}] = true;" if ready_flag else ""
    return f"""new Promise((resolve, reject) => {{
        {ready}
        const started = performance.now();
        const check = () => {{ try {{ return Boolean({condition}); }} catch (error) {{ return false; }} }};
        if (check()) {{ resolve(0); return; }}
        const observer = new MutationObserver(() => {{
            if (check()) {{ observer.disconnect(); clearInterval(poll); resolve(performance.now() - started); }}
        }});
        observer.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
        const poll = setInterval(() => {{
            if (check()) {{ observer.disconnect(); clearInterval(poll); resolve(performance.now() - started); }}
            else if (performance.now() - started > {timeout_s * 1000}) {{
                observer.disconnect(); clearInterval(poll); reject(new Error({json.dumps("timeout: " + condition)}));
            }}
        }}, 25);
    }})"""


def cell(collection: str, shard: int, peer: int) -> str:
    return f'document.querySelector(\'[data-cell="{collection}/{shard}/{peer}"]\')'


async def test_page_loads_and_replays_what_the_bus_said_before(
        ui: UiServer, page: DevToolsPage, coordinator_events: EventPublisher,
        nemesis_events: EventPublisher) -> None:
    await ui.wait_events_seen(publish_story(coordinator_events, nemesis_events), timeout_s=5)
    await open_live(page, ui)
    await page.evaluate(wait_for_js("document.querySelectorAll('ol.decisions li:not(.empty)').length === 12"))

    assert await page.evaluate("document.title") == "shardsim live · ui-test"
    assert await page.evaluate("[...document.scripts].filter((s) => s.src).length") == 0
    assert await page.evaluate("document.querySelectorAll('link[rel=stylesheet], img, iframe').length") == 0
    assert await page.evaluate("document.querySelectorAll('#legend .chip').length") == 7
    states = await page.evaluate("Object.fromEntries([...document.querySelectorAll('[data-cell]')]"
                                 ".map((c) => [c.dataset.cell, c.dataset.state]))")
    assert states == {"books/0/1": "Active", "books/0/2": "Dead", "books/0/3": "Listener",
                      "books/1/1": "", "books/1/2": "Active", "books/1/3": "Recovery"}
    assert await page.evaluate("getComputedStyle(" + cell(COLLECTION, 0, 2) + ").backgroundColor") == "rgb(214, 69, 65)"
    assert await page.evaluate("[...document.querySelectorAll('.peer')].map((p) => p.textContent.trim().split(' ')[0])") \
        == ["n1", "n2", "n3"]
    faults = await page.evaluate("[...document.querySelectorAll('.fault')].map((f) => f.dataset.fault)")
    assert faults == ["f2"], "f1 was healed; only f2 is in force"
    lanes = await page.evaluate("document.querySelectorAll('#swimlane .segment').length")
    assert lanes == 12, "one segment per state held, on 5 lanes"
    assert page.exceptions == []


async def test_new_replica_state_shows_within_one_second(
        ui: UiServer, page: DevToolsPage, coordinator_events: EventPublisher) -> None:
    coordinator_events.publish("replica.state", collection="c", shard=0, peer=2, from_=None, to="Active",
                               rule="create", explanation="created")
    await ui.wait_events_seen(1, timeout_s=5)
    await open_live(page, ui)
    await page.evaluate(wait_for_js(cell("c", 0, 2) + ".dataset.state === 'Active'"))

    waiting = await page.call_start("Runtime.evaluate", {
        "expression": wait_for_js(cell("c", 0, 2) + ".dataset.state === 'Dead'", ready_flag="deadWatched"),
        "awaitPromise": True, "returnByValue": True})
    await wait_until(lambda: page.evaluate("window.deadWatched === true"), SHOW_TIMEOUT_S, 0.02,
                     what="the page's watcher in place")
    published_s = time.monotonic()
    coordinator_events.publish("replica.state", collection="c", shard=0, peer=2, from_="Active", to="Dead",
                               rule="update_failed", explanation="forwarded update failed")
    async with asyncio.timeout(SHOW_TIMEOUT_S + 1):
        result = await waiting
    shown_s = time.monotonic() - published_s
    assert "exceptionDetails" not in result, result
    print(f"\nreplica.state publish -> page DOM: {shown_s * 1000:.0f} ms")
    assert shown_s < SHOW_LATENCY_S_MAX
    newest = await page.evaluate("document.querySelector('ol.decisions li').textContent")
    assert "update_failed" in newest and "forwarded update failed" in newest


async def test_transfer_phase_draws_a_progress_bar(
        ui: UiServer, page: DevToolsPage, coordinator_events: EventPublisher) -> None:
    await open_live(page, ui)
    coordinator_events.publish("transfer.started", collection="c", shard=1, from_=2, to=1, method="snapshot",
                               phase="started", bytes=0, bytes_total=4096, attempt=1)
    coordinator_events.publish("transfer.phase", collection="c", shard=1, from_=2, to=1, method="snapshot",
                               phase="streaming", bytes=2048, bytes_total=4096, attempt=1)
    bar = "document.querySelector('[data-transfer=\"c/1/2/1\"] [role=progressbar]')"
    await page.evaluate(wait_for_js(bar + ".getAttribute('aria-valuenow') === '50'"))
    assert await page.evaluate(bar + ".querySelector('.fill').style.width") == "50%"
    text = await page.evaluate("document.querySelector('[data-transfer=\"c/1/2/1\"]').textContent")
    assert "streaming" in text and "2.0 KiB of 4.0 KiB (50%)" in text

    coordinator_events.publish("transfer.finished", collection="c", shard=1, from_=2, to=1, method="snapshot",
                               phase="finish", bytes=4096, bytes_total=4096, attempt=1)
    await page.evaluate(wait_for_js(bar + ".getAttribute('aria-valuenow') === '100'"))
    assert "finished" in await page.evaluate("document.querySelector('[data-transfer=\"c/1/2/1\"]').textContent")


async def test_screenshot_of_a_story(ui: UiServer, page: DevToolsPage, coordinator_events: EventPublisher,
                                     nemesis_events: EventPublisher, tmp_path: Path) -> None:
    await ui.wait_events_seen(publish_story(coordinator_events, nemesis_events), timeout_s=5)
    await open_live(page, ui)
    await page.evaluate(wait_for_js("document.querySelector('#swimlane') !== null"))
    await page.evaluate(wait_for_js("!document.querySelector('.changed, .fresh') && "
                                    "document.getAnimations().length === 0"))  # the change flashes faded
    shot = await page.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    path = Path(os.environ.get("SHARDSIM_UI_SCREENSHOT", tmp_path / "ui.png"))
    path.write_bytes(png)
    print(f"\nscreenshot: {path}")
