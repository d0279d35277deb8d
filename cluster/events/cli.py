"""`shardsim events` and `shardsim watch`: the event bus for people at a terminal.

`events` prints one readable line per event (`12:00:01.234 node/2 replica.state collection=books ...`), or
the raw JSON with `--json`, optionally only some kinds. `watch` folds the events into a `ClusterView` and
redraws it in place with ANSI codes (no curses): peers, shards and replica states, transfers with progress
bars, faults and the latest decisions, built only from what the bus carries.

Defaults: broker `$SHARDSIM_MQTT_URL` else `mqtt://127.0.0.1:1883`, cluster `$SHARDSIM_CLUSTER` else
`shardsim`. Both commands run until Ctrl-C, `--count` events or `--duration-s` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cluster.events.subscriber import bus_args_add, events_stream, topic_filter
from cluster.events.view import ClusterView
from node import clock

REDRAW_S_MIN = 0.2
ENVELOPE_FIELDS = ("ts", "source", "kind", "topic", "recv_ts")
ANSI_HOME_CLEAR = "\x1b[H\x1b[2J"


def stream_args_add(parser: argparse.ArgumentParser) -> None:
    """The options `events` and `watch` share: the bus, the cluster, when to stop."""
    bus_args_add(parser)
    parser.add_argument("--count", metavar="N", type=int, default=None, help="stop after this many events")
    parser.add_argument("--duration-s", metavar="SECONDS", type=float, default=None, help="stop after this many seconds")


def event_line(event: dict[str, Any]) -> str:
    """`HH:MM:SS.mmm source kind field=value ...`; strings with spaces are JSON-quoted."""
    ts = event.get("ts")
    stamp = "--:--:--.---"
    if isinstance(ts, int | float):
        stamp = time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
    fields = " ".join(f"{name}={_field_text(value)}" for name, value in event.items() if name not in ENVELOPE_FIELDS)
    return f"{stamp} {event.get('source', '?')} {event.get('kind', '?')} {fields}".rstrip()


def _field_text(value: Any) -> str:
    if isinstance(value, str) and value and not any(char.isspace() or char in "\"=" for char in value):
        return value
    return json.dumps(value, default=str)


def events_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim events` (wired in cluster/cli.py)."""
    stream_args_add(parser)
    parser.add_argument("--kind", action="append", default=None, help="only this kind (repeatable)")
    parser.add_argument("--json", action="store_true", help="print each payload as raw JSON")


def events_main(args: argparse.Namespace) -> int:
    """`shardsim events [--mqtt-url URL] [--cluster-name NAME] [--kind K ...] [--json]`: print events as they
    come."""
    kinds = set(args.kind) if args.kind else None

    def show(event: dict[str, Any]) -> None:
        event.pop("recv_ts", None)
        topic = event.pop("topic", "")
        print(f"{topic} {json.dumps(event)}" if args.json else event_line(event), flush=True)

    return _run(_consume(args, kinds, show))


def watch_arguments_add(parser: argparse.ArgumentParser) -> None:
    """The options of `shardsim watch` (wired in cluster/cli.py)."""
    stream_args_add(parser)


def watch_main(args: argparse.Namespace) -> int:
    """`shardsim watch [--mqtt-url URL] [--cluster-name NAME]`: a live view of the cluster, from events only."""
    view = ClusterView()
    color = sys.stdout.isatty()
    last_draw = 0.0

    def fold(event: dict[str, Any]) -> None:
        nonlocal last_draw
        view.apply(event)
        if clock.monotonic() - last_draw >= REDRAW_S_MIN:
            _draw(view, args.cluster_name, color)
            last_draw = clock.monotonic()

    _draw(view, args.cluster_name, color)
    status = _run(_consume(args, None, fold))
    _draw(view, args.cluster_name, color)
    return status


def _draw(view: ClusterView, cluster: str, color: bool) -> None:
    sys.stdout.write(f"{ANSI_HOME_CLEAR}cluster {cluster}\n{view.render(color)}")
    sys.stdout.flush()


def _run(consume: Coroutine[Any, Any, None]) -> int:
    try:
        asyncio.run(consume)
    except KeyboardInterrupt:
        return 130
    return 0


async def _consume(args: argparse.Namespace, kinds: set[str] | None,
                   handle: Callable[[dict[str, Any]], None]) -> None:
    """Feed events to `handle` until `--count` events or `--duration-s` seconds (forever without either)."""
    def subscribed() -> None:
        print(f"# listening on {args.mqtt_url} {topic_filter(args.cluster_name)}", file=sys.stderr, flush=True)

    seen_count = 0
    stream = events_stream(args.mqtt_url, args.cluster_name, kinds, on_subscribed=subscribed)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.duration_s), contextlib.aclosing(stream):
            async for event in stream:
                handle(event)
                seen_count += 1
                if args.count is not None and seen_count >= args.count:
                    return
