"""The node's flags come from its settings dataclass: one default, written once.

`node/settings_args.py` turns each field into `--field-name` with its type, default and help; these tests
hold it to that with the real `NodeSettings` and with small dataclasses (the coordinator's settings are
read the same way, tests/cluster/test_cli.py).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node.settings import NodeSettings, parser_build, settings_from_args
from node.settings_args import setting, settings_args_add, settings_from_namespace

SETTINGS_ENV = ("QDRANT__SERVICE__API_KEY", "QDRANT__SERVICE__ALT_API_KEY", "SHARDSIM_MQTT_URL", "SHARDSIM_CLUSTER")
FLAGS_BEFORE = ("--host", "--port", "--data-dir", "--snapshots-dir", "--peer-id", "--name", "--api-key",
                "--max-upload-bytes", "--coordinator-url", "--advertise-address", "--mqtt-url", "--cluster-name",
                "--default-priority", "--transfer-timeout-s", "--compaction-wal-bytes", "--compaction-interval-s",
                "--download-stall-timeout-s")


@pytest.fixture(autouse=True)
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def parse(settings_class: type, argv: list[str], exclude: set[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings_args_add(parser, settings_class, exclude=exclude or set())
    return parser.parse_args(argv)


def test_no_flags_give_the_dataclass_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = (tmp_path / "data").resolve()
    expected = NodeSettings(data_dir=data_dir, snapshots_dir=data_dir / "snapshots")
    assert settings_from_args([]) == expected
    assert expected.port == 6333 and expected.max_upload_bytes == 8 << 30 and expected.default_priority == "replica"


def test_every_setting_of_the_node_is_a_flag_and_every_flag_before_still_is() -> None:
    flags = {option for action in parser_build()._actions for option in action.option_strings}
    by_field = {"--" + item.name.replace("_", "-") for item in dataclasses.fields(NodeSettings)}
    assert by_field <= flags
    assert set(FLAGS_BEFORE) <= flags


def test_flags_reach_the_settings(tmp_path: Path) -> None:
    settings = settings_from_args(["--port", "7000", "--data-dir", str(tmp_path), "--peer-id", "4", "--api-key",
                                   "k", "--default-priority", "snapshot", "--transfer-attempts", "5",
                                   "--forward-timeout-s", "1.5"])
    assert (settings.port, settings.peer_id, settings.api_key) == (7000, 4, "k")
    assert (settings.default_priority, settings.transfer_attempts, settings.forward_timeout_s) == ("snapshot", 5, 1.5)
    assert settings.snapshots_dir == tmp_path.resolve() / "snapshots"


def test_a_value_outside_the_choices_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        settings_from_args(["--default-priority", "no_sync"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'no_sync'" in capsys.readouterr().err


def test_the_environment_gives_defaults_and_the_help_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT__SERVICE__API_KEY", "s3cret")
    monkeypatch.setenv("SHARDSIM_MQTT_URL", "mqtt://bus:1883")
    monkeypatch.setenv("SHARDSIM_CLUSTER", "blue")
    settings = settings_from_args([])
    assert (settings.api_key, settings.mqtt_url, settings.cluster_name) == ("s3cret", "mqtt://bus:1883", "blue")
    assert settings_from_args(["--cluster-name", "red"]).cluster_name == "red"
    text = parser_build().format_help()
    assert "$QDRANT__SERVICE__API_KEY" in text and "s3cret" not in text


@dataclass(kw_only=True)
class Knobs:
    rate_hz: float = field(default=2.5, metadata=setting("how often"))
    name: str | None = None
    path: Path = field(metadata=setting("where; none means the caller's choice"))


def test_a_field_added_to_a_dataclass_is_a_flag_with_its_type_default_and_help() -> None:
    assert vars(parse(Knobs, [])) == {"rate_hz": 2.5, "name": None, "path": None}

    @dataclass(kw_only=True)
    class MoreKnobs(Knobs):
        retries: int = field(default=3, metadata=setting("attempts", env="KNOBS_RETRIES"))
        verbose: bool = False

    args = parse(MoreKnobs, ["--retries", "5", "--verbose", "--path", "/tmp/x"])
    assert (args.retries, args.verbose, args.path, args.rate_hz) == (5, True, Path("/tmp/x"), 2.5)
    assert settings_from_namespace(MoreKnobs, args) == MoreKnobs(retries=5, verbose=True, path=Path("/tmp/x"))
    parser = argparse.ArgumentParser()
    settings_args_add(parser, MoreKnobs)
    assert "attempts (default: $KNOBS_RETRIES, else 3)" in " ".join(parser.format_help().split())


def test_an_environment_variable_in_the_metadata_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass
    class Retry:
        attempts: int = field(default=3, metadata=setting("attempts", env="KNOBS_ATTEMPTS"))

    monkeypatch.setenv("KNOBS_ATTEMPTS", "9")
    assert parse(Retry, []).attempts == 9
    assert parse(Retry, ["--attempts", "1"]).attempts == 1


def test_a_type_no_flag_can_carry_is_an_error_unless_left_out() -> None:
    @dataclass
    class WithTable:
        port: int = 1
        table: dict[str, int] = field(default_factory=dict)

    with pytest.raises(TypeError, match="setting table"):
        parse(WithTable, [])
    assert vars(parse(WithTable, [], exclude={"table"})) == {"port": 1}
