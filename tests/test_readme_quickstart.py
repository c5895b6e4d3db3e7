"""README's "Quick start with curl" runs as written (#17 item 1), so that it cannot rot: its
providers block writes the entry that extends the catalogue, a fresh system starts with the variables the README
names, and its curl block runs in bash against it, down to the proxied call and the deletion."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support.system import ROOT, make_system
from tests.support.upstream import Upstream

README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"<!-- quickstart:(\w+)[^>]*-->\n```sh\n(.*?)\n```", re.S)
OWN_API = "127.0.0.1:8000"  # the README's stand-in address, replaced by the test's upstream


def blocks() -> dict[str, str]:
    found = dict(BLOCK.findall(README))
    assert set(found) == {"providers", "run"}, f"README quick start blocks: {sorted(found)}"
    return found


def restart_variables() -> dict[str, str]:
    """The variables the README says to restart `make up` with."""
    match = re.search(r"`(PROVIDERS_FILE=\S+ OUTBOUND_ALLOW_CIDRS=\S+)\s+make\s+up`", README)
    assert match, "README names PROVIDERS_FILE and OUTBOUND_ALLOW_CIDRS for the restart"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


def bash(script: str, cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def own_api():
    with Upstream() as server:
        yield server


def test_the_readme_curl_quick_start_runs_against_a_fresh_system(tmp_path, own_api):
    found = blocks()
    shell_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    made = bash(found["providers"].replace(OWN_API, f"{own_api.host}:{own_api.port}"), tmp_path, shell_env)
    assert made.returncode == 0, made.stderr
    assert "my-api:" in (tmp_path / "my-providers.yaml").read_text()

    variables = restart_variables()
    assert variables["PROVIDERS_FILE"] == "$PWD/my-providers.yaml"
    system = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", DEFAULT_PLAN="growth",
                         PROVIDERS_FILE=str(tmp_path / "my-providers.yaml"),
                         OUTBOUND_ALLOW_CIDRS=variables["OUTBOUND_ALLOW_CIDRS"]).start()
    try:
        ran = bash(found["run"], tmp_path, {**shell_env, "AUTHPORT": system.url, "KEY": system.dev_key})
    finally:
        system.stop()
    assert ran.returncode == 0, f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}\n{system.logs()}"
    out = ran.stdout
    assert '"unique_key":"github"' in out.replace(" ", "")
    assert "nango_connect_session_" in out and "connect_link" in out
    assert '"access_token":"gho_example"' in out.replace(" ", "")
    assert own_api.last().path == "/" and own_api.last().header("authorization") == "Bearer my-api-key"
    assert out.rstrip().endswith("after delete: 404")


def test_the_banner_of_make_up_points_at_this_section():
    from common.launcher import QUICK_START

    section = QUICK_START.split('"')[1]
    assert f"## {section}\n" in README
