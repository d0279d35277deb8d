"""The `shardsim` command: every command in its help, each command's own `--help`, one spelling per option,
and the one start-up of the live page that `shardsim up --ui` and `shardsim run --ui` share."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from cluster.cli import COMMANDS, main, parser_build
from cluster.coordinator.__main__ import parser_build as coordinator_parser_build
from cluster.coordinator.engine import CoordinatorSettings
from cluster.ui.server import live_page_start
from node.settings import parser_build as node_parser_build
from node.settings_args import settings_from_namespace

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND_NAMES = ["run", "replay", "explore", "up", "ui", "watch", "events", "proxy", "demo"]
BUS_COMMANDS = ["run", "up", "ui", "watch", "events"]
HTTP_TIMEOUT_S = 5.0


def command_parser(name: str) -> argparse.ArgumentParser:
    """The subparser of `shardsim <name>`, its options added."""
    subparsers = next(action for action in parser_build(name)._actions
                      if isinstance(action, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = subparsers.choices[name]
    return parser


def visible_options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions if action.help != argparse.SUPPRESS
            for option in action.option_strings}


def test_shardsim_help_lists_every_command_with_a_line_saying_what_it_does() -> None:
    result = subprocess.run([sys.executable, "-m", "cluster.cli", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [command.name for command in COMMANDS] == COMMAND_NAMES
    listing = " ".join(result.stdout.split())
    for command in COMMANDS:
        assert f"{command.name} {' '.join(command.summary.split()[:4])}" in listing, command.name


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_each_command_has_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: shardsim {name} ")
    assert len(visible_options(command_parser(name))) >= 2, "the command adds its own options"


def test_no_command_prints_the_help_and_an_unknown_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 0 and "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["start"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'start'" in capsys.readouterr().err


@pytest.mark.parametrize("name", BUS_COMMANDS)
def test_every_command_names_the_cluster_and_the_broker_the_same_way(name: str) -> None:
    options = visible_options(command_parser(name))
    assert {"--cluster-name", "--mqtt-url"} <= options
    assert "--cluster" not in options


def test_the_node_and_the_coordinator_spell_their_shared_options_as_the_commands_do() -> None:
    shared = {"--cluster-name", "--mqtt-url", "--api-key", "--default-priority", "--host", "--port"}
    assert shared <= visible_options(node_parser_build())
    assert shared <= visible_options(coordinator_parser_build())
    assert "--default-priority" in visible_options(command_parser("up"))


@pytest.mark.parametrize("name", ["ui", "watch", "events"])
def test_the_old_spelling_cluster_still_works_as_a_hidden_alias(name: str) -> None:
    parser = command_parser(name)
    assert parser.parse_args(["--cluster", "blue"]).cluster_name == "blue"
    assert parser.parse_args(["--cluster-name", "red"]).cluster_name == "red"
    assert "--cluster " not in parser.format_help() and "--cluster NAME" not in parser.format_help()


def test_the_coordinator_reads_its_settings_from_its_dataclass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QDRANT__SERVICE__API_KEY", "SHARDSIM_MQTT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHARDSIM_CLUSTER", "blue")
    args = coordinator_parser_build().parse_args(["--db", str(tmp_path / "c.sqlite"), "--incoming-transfers-limit",
                                                  "0", "--acks-timeout-s", "1"])
    settings = settings_from_namespace(CoordinatorSettings, args)
    assert settings == CoordinatorSettings(db_path=tmp_path / "c.sqlite", cluster_name="blue",
                                           incoming_transfers_limit=0, acks_timeout_s=1.0)
    defaults = settings_from_namespace(CoordinatorSettings, coordinator_parser_build().parse_args([]))
    assert defaults == dataclasses.replace(CoordinatorSettings(), cluster_name="blue")


async def test_the_live_page_brings_its_own_broker_when_none_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with contextlib.AsyncExitStack() as stack:
        mqtt_url = await live_page_start(stack, None, "c1", 0)
        page_url = capsys.readouterr().out.strip().removeprefix("live page: ")
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(page_url + "status") as response:
            status = await response.json()
    assert mqtt_url.startswith("mqtt://127.0.0.1:")
    assert (status["cluster"], status["mqtt_url"], status["subscribed_count"]) == ("c1", mqtt_url, 1)
