"""The one HTML document of `shardsim ui`, assembled from `static/` with everything inline.

The page must work with no network beyond the UI server (classrooms, CI), so the stylesheet and the scripts
are inlined into `page.html`, and the configuration (cluster name, broker, state colours) travels as a JSON
`<script type="application/json">` block. State colours are the report's palette (`cluster.report.swimlane`)
so the live page and the run report read the same; the text colour on each is picked for contrast here.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from cluster.report.swimlane import STATE_COLOUR_OTHER, STATE_COLOURS
from node.protocol import ReplicaState

SCRIPT_NAMES = ("model.js", "render.js", "swimlane.js", "main.js")
STATE_ORDER = tuple(state.value for state in (  # the legend's order: healthy first, Dead last
    ReplicaState.ACTIVE, ReplicaState.PARTIAL, ReplicaState.INITIALIZING, ReplicaState.RECOVERY,
    ReplicaState.MANUAL_RECOVERY, ReplicaState.LISTENER, ReplicaState.DEAD))
LUMINANCE_DARK_TEXT_MIN = 0.45


def _static(name: str) -> str:
    return resources.files("cluster.ui").joinpath("static", name).read_text(encoding="utf-8")


def text_colour(background: str) -> str:
    """Near-black on light backgrounds, white on dark ones (relative luminance of `#rrggbb`)."""
    red, green, blue = (int(background[index:index + 2], 16) / 255 for index in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#111827" if luminance >= LUMINANCE_DARK_TEXT_MIN else "#ffffff"


def state_palette() -> dict[str, dict[str, str]]:
    """`{state: {"fill", "text"}}` in legend order, plus `"other"` for a state the page does not know."""
    palette = {state: STATE_COLOURS.get(state, STATE_COLOUR_OTHER) for state in STATE_ORDER}
    palette["other"] = STATE_COLOUR_OTHER
    return {state: {"fill": fill, "text": text_colour(fill)} for state, fill in palette.items()}


def _json_in_script(value: Any) -> str:
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _template() -> str:
    scripts = "\n".join(f"// ---- {name}\n{_static(name)}" for name in SCRIPT_NAMES)
    return _static("page.html").replace("/*STYLE*/", _static("page.css")).replace("/*SCRIPT*/", scripts)


def page_html(cluster: str | None, mqtt_url: str, events_max: int) -> str:
    """The whole page, ready to serve."""
    config = {"cluster": cluster, "mqtt_url": mqtt_url, "events_max": events_max, "states": state_palette()}
    return _template().replace("/*CONFIG*/", _json_in_script(config))
