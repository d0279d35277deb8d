"""docker-compose.yml: valid for docker-compose, and its services agree with each other.

There is no Docker engine on the test machines, so the compose file is validated (`docker-compose config
-q`; the test fails under CI when docker-compose is missing) and read: every node the runner joins is a
service started with the same name, peer id and advertised address; everything points at the same
coordinator, broker and cluster name; nodes reach each other through Toxiproxy (the advertised proxy host).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from cluster.launcher.external import nodes_parse
from node.settings import parser_build

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    message = "docker-compose not found: apt-get install -y docker-compose"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required under CI)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_PATH.read_text())["services"])


def flags(command: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line."""
    return {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}


def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run([docker_compose(), "-f", str(COMPOSE_PATH), "config", "-q"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_services_are_the_broker_the_proxy_the_coordinator_three_nodes_and_a_runner(
        services: dict[str, Any]) -> None:
    assert set(services) == {"mosquitto", "toxiproxy", "coordinator", "n1", "n2", "n3", "runner"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["toxiproxy"]["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert "-host=0.0.0.0" in services["toxiproxy"]["command"], "the API must be reachable from the runner"


def test_mosquitto_gets_its_config_from_deploy(services: dict[str, Any]) -> None:
    mount = next(v for v in services["mosquitto"]["volumes"] if v.endswith(":/mosquitto/config/mosquitto.conf:ro"))
    config = (REPO_ROOT / mount.split(":")[0]).read_text().splitlines()
    for line in ("listener 1883", "allow_anonymous true", "max_queued_messages 0"):
        assert line in config


def test_every_node_the_runner_joins_runs_with_the_same_identity(services: dict[str, Any]) -> None:
    environment = services["runner"]["environment"]
    joined = nodes_parse([environment["SHARDSIM_NODES"]])
    assert [node.name for node in joined] == ["n1", "n2", "n3"]
    for node in joined:
        command = services[node.name]["command"]
        assert command[:3] == ["python", "-m", "node"]
        settings = parser_build().parse_args(command[3:])
        assert (settings.name, settings.peer_id, settings.advertise_address) == (node.name, node.peer_id, node.address)
        host, port = node.address.rsplit(":", 1)
        assert (host, int(port), settings.host) == (node.name, settings.port, "0.0.0.0")
        assert settings.coordinator_url == environment["SHARDSIM_COORDINATOR_URL"]
        assert settings.mqtt_url == environment["SHARDSIM_MQTT_URL"]
        assert settings.cluster_name == environment["SHARDSIM_CLUSTER"]
        assert services["runner"]["depends_on"][node.name]["condition"] == "service_healthy"


def test_the_coordinator_broker_and_proxy_urls_name_their_services(services: dict[str, Any]) -> None:
    environment = services["runner"]["environment"]
    coordinator = flags(services["coordinator"]["command"])
    url = urlparse(environment["SHARDSIM_COORDINATOR_URL"])
    assert (url.hostname, url.port, coordinator["--host"]) == ("coordinator", int(coordinator["--port"]), "0.0.0.0")
    assert coordinator["--mqtt-url"] == environment["SHARDSIM_MQTT_URL"]
    assert coordinator["--cluster-name"] == environment["SHARDSIM_CLUSTER"]
    assert urlparse(environment["SHARDSIM_MQTT_URL"]).hostname == "mosquitto"
    assert urlparse(environment["TOXIPROXY_URL"]).hostname == "toxiproxy"
    assert environment["SHARDSIM_PROXY_HOST"] == "toxiproxy", "nodes reach links at the toxiproxy container"


def test_the_runner_runs_a_scenario_in_external_mode_and_keeps_the_report(services: dict[str, Any]) -> None:
    runner = services["runner"]
    assert runner["command"][:2] == ["shardsim", "run"] and "--external" in runner["command"]
    assert "./runs:/app/runs" in runner["volumes"]


def test_the_image_installs_the_project_on_python_3_11() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    assert "FROM python:3.11-slim" in dockerfile
    assert "RUN pip install ." in dockerfile and "WORKDIR /app" in dockerfile
