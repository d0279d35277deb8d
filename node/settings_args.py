"""Command-line options derived from a settings dataclass, so each default is written once: on its field.

Pure (argparse, dataclasses, typing): the node's `NodeSettings` and the coordinator's `CoordinatorSettings`
both use it, which is why `cluster/` may import it (tests/test_layout.py). A field becomes the option
`--field-name` with the field's type, its default and the help in its metadata:

    port: int = field(default=6333, metadata=setting("the one HTTP port"))
    api_key: str | None = field(default=None, metadata=setting("...", env="QDRANT__SERVICE__API_KEY"))

`settings_args_add(parser, NodeSettings)` adds every field (a new field shows up with no other edit);
`settings_from_namespace(NodeSettings, args, **computed)` builds the settings back from the parsed namespace.
Types understood: str, int, float, Path, bool (`--x/--no-x`) and `T | None` of these; anything else is a
TypeError naming the field, unless the field is left out with `exclude`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

SETTING_KEY = "setting"
SCALAR_TYPES: tuple[type, ...] = (str, int, float, Path)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one field reads on the command line: its help, an environment variable that gives its default,
    another flag name (`--db` for `db_path`), the allowed values."""

    help: str
    env: str | None = None
    flag: str | None = None
    choices: Sequence[str] | None = None


def setting(help: str, *, env: str | None = None, flag: str | None = None,
            choices: Sequence[str] | None = None) -> dict[str, Any]:
    """The `metadata=` of a settings field: `field(default=30.0, metadata=setting("how often ..."))`."""
    return {SETTING_KEY: Setting(help, env, flag, tuple(choices) if choices is not None else None)}


def option_type(hint: Any, name: str) -> type:
    """The scalar type a field's flag converts to (`T` of `T | None`); TypeError for what a flag cannot carry."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) != 1:
            raise TypeError(f"setting {name}: a union of {members} cannot be read from one flag")
        hint = members[0]
    if hint is bool or hint in SCALAR_TYPES:
        return typing.cast(type, hint)
    raise TypeError(f"setting {name}: type {hint!r} cannot be read from a flag (exclude it, or use "
                    f"{', '.join(t.__name__ for t in (*SCALAR_TYPES, bool))})")


def default_text(value: Any) -> str:
    """How a default reads in the help: `none`, `8589934592 (8 GiB)`, `30.0`."""
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"{value} ({value >> 30} GiB)" if value % (1 << 30) == 0 else f"{value} ({value >> 20} MiB)"
    return str(value)


def metavar_of(name: str) -> str:
    """`PORT` for `port`, `BYTES` for `chunk_bytes`, `SECONDS` for `transfer_timeout_s` and `backoff_s_max`."""
    words = [word for word in name.split("_") if word not in ("max", "min")]
    return "SECONDS" if words[-1] == "s" else words[-1].upper()


def settings_args_add(parser: argparse.ArgumentParser, settings_class: type, *,
                      exclude: Iterable[str] = ()) -> None:
    """Add one option per field of the dataclass `settings_class`, in field order, except `exclude`.

    A field's default is the option's default; with `env` in its metadata, that environment variable (when
    set and not empty) overrides it. The help says both, never the variable's value (it may be a secret).
    A field without a default gets the default None: the caller computes it (see `settings_from_namespace`).
    """
    hints = typing.get_type_hints(settings_class)
    left_out = set(exclude)
    for item in dataclasses.fields(settings_class):
        if item.name in left_out or not item.init:
            continue
        meta: Setting = item.metadata.get(SETTING_KEY) or Setting(help="")
        kind = option_type(hints[item.name], item.name)
        default = field_default(item)
        if meta.env and os.environ.get(meta.env):
            default = convert(kind, os.environ[meta.env])
        shown = default_text(field_default(item))
        shown = f"${meta.env}, else {shown}" if meta.env else shown
        flag = meta.flag or "--" + item.name.replace("_", "-")
        help_text = f"{meta.help} (default: {shown})" if meta.help else f"(default: {shown})"
        options: dict[str, Any] = {"dest": item.name, "default": default, "help": help_text.replace("%", "%%")}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = kind
            options["metavar"] = "|".join(meta.choices) if meta.choices else metavar_of(item.name)
        if meta.choices:
            options["choices"] = meta.choices
        parser.add_argument(flag, **options)


def field_default(item: dataclasses.Field[Any]) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None


def convert(kind: type, text: str) -> Any:
    if kind is bool:
        return text.strip().lower() in ("1", "true", "yes", "on")
    converter: Callable[[str], Any] = kind
    return converter(text)


def settings_from_namespace(settings_class: Callable[..., T], args: argparse.Namespace, **computed: Any) -> T:
    """`settings_class` from the options `settings_args_add` added, with `computed` values taking precedence
    (paths resolved, defaults that depend on other settings). Fields with no option keep their default."""
    fields = dataclasses.fields(typing.cast(Any, settings_class))
    values = {item.name: getattr(args, item.name) for item in fields if item.init and hasattr(args, item.name)}
    return settings_class(**{**values, **computed})
