"""compose.yaml renders with Debian's docker-compose and describes the deployment we intend.

No Docker engine is needed: `docker-compose config` only reads and interpolates the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.databases import services_required

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
AUTHPORT_SERVICES = {"gateway", "store", "auth", "proxy", "dashboard"}
ALL_SERVICES = AUTHPORT_SERVICES | {"postgres", "redis"}
SERVICE_PORTS = {"store": 3010, "auth": 3011, "proxy": 3012, "dashboard": 3013}
# Obvious test values, never real secrets.
REQUIRED = {
    "INTERNAL_API_KEY": "test-internal-api-key",
    "NANGO_DB_PASSWORD": "test-db-password",
    "NANGO_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "NANGO_SECRET_KEY_DEV": "11111111-1111-4111-8111-111111111111",
    "NANGO_SECRET_KEY_PROD": "22222222-2222-4222-8222-222222222222",
}
STORE_ONLY = ("NANGO_DB_PASSWORD", "NANGO_ENCRYPTION_KEY", "NANGO_SECRET_KEY_DEV", "NANGO_SECRET_KEY_PROD")


def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        message = "docker-compose is not installed (scripts/system-deps.sh installs it)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return binary


def compose(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """Run `docker-compose -f compose.yaml <args>` seeing only `variables` (no .env, no outer NANGO_*)."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [docker_compose(), "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )


def rendered(tmp_path: Path, **variables: str) -> dict:
    result = compose(tmp_path, "config", **{**REQUIRED, **variables})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    return rendered(tmp_path_factory.mktemp("compose"))


def test_config_is_valid_with_the_required_variables(tmp_path):
    result = compose(tmp_path, "config", "-q", **REQUIRED)
    assert result.returncode == 0, result.stderr


def test_exactly_the_expected_services(config):
    assert set(config["services"]) == ALL_SERVICES


def test_postgres_15_keeps_its_data_in_a_named_volume(config):
    postgres = config["services"]["postgres"]
    assert postgres["image"].startswith("postgres:15")
    volume = postgres["volumes"][0]
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source in config["volumes"]
    assert config["services"]["redis"]["image"].startswith("redis:7")


def published_ports(service: dict) -> list[str]:
    return [str(p["published"]) if isinstance(p, dict) else str(p) for p in service.get("ports", [])]


def test_only_the_gateway_publishes_a_port(config):
    publishing = {name for name, service in config["services"].items() if service.get("ports")}
    assert publishing == {"gateway"}
    assert published_ports(config["services"]["gateway"]) == ["3003"]


def test_gateway_port_follows_server_port(tmp_path):
    gateway = rendered(tmp_path, SERVER_PORT="4000")["services"]["gateway"]
    assert published_ports(gateway) == ["4000"]
    assert str(gateway["ports"][0]["target"]) == "4000"
    assert gateway["environment"]["SERVER_PORT"] == "4000"


def test_authport_services_share_one_image(config):
    services = [config["services"][name] for name in sorted(AUTHPORT_SERVICES)]
    assert all("build" in s and "image" in s for s in services)
    assert len({repr(s["build"]) for s in services}) == 1
    assert len({s["image"] for s in services}) == 1
    commands = {name: config["services"][name]["command"] for name in AUTHPORT_SERVICES}
    assert commands == {
        "gateway": ["python", "-m", "gateway"],
        "store": ["python", "-m", "services.store"],
        "auth": ["python", "-m", "services.auth"],
        "proxy": ["python", "-m", "services.proxy"],
        "dashboard": ["python", "-m", "services.dashboard"],
    }


def test_every_service_is_health_checked_and_started_in_order(config):
    for name, service in config["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
    for name in AUTHPORT_SERVICES:
        assert "/healthz" in " ".join(config["services"][name]["healthcheck"]["test"])
    assert set(config["services"]["store"]["depends_on"]) >= {"postgres", "redis"}
    assert set(config["services"]["gateway"]["depends_on"]) >= {"store", "auth", "proxy", "dashboard"}


def test_services_find_each_other_by_name(config):
    for name in AUTHPORT_SERVICES:
        env = config["services"][name]["environment"]
        assert env["INTERNAL_API_KEY"] == REQUIRED["INTERNAL_API_KEY"]
        assert env["NANGO_REDIS_URL"].startswith("redis://redis:")
        for service, port in SERVICE_PORTS.items():
            assert env[f"{service.upper()}_URL"] == f"http://{service}:{port}"
        if name != "gateway":
            assert env["BIND_HOST"] == "0.0.0.0"


def test_only_the_store_holds_database_and_encryption_secrets(config):
    store = config["services"]["store"]["environment"]
    assert store["NANGO_DB_HOST"] == "postgres"
    for variable in STORE_ONLY:
        assert store[variable] == REQUIRED[variable]
    for name in AUTHPORT_SERVICES - {"store"}:
        leaked = set(STORE_ONLY) & set(config["services"][name]["environment"])
        assert not leaked, f"{name} gets {leaked}"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_secret_is_refused_by_name(tmp_path, missing):
    variables = {k: v for k, v in REQUIRED.items() if k != missing}
    result = compose(tmp_path, "config", "-q", **variables)
    assert result.returncode != 0
    # docker-compose 1.x dumps the whole mapping before the message; the message itself comes last.
    last_line = (result.stderr + result.stdout).strip().splitlines()[-1]
    assert missing in last_line.rsplit(": ", 1)[-1], last_line
