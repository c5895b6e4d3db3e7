"""The `authport` command: help on every level; `admin` and `status` read `.env` in the working
directory as the launcher does (the shell wins), so the README's examples run as printed after
`make up`; `status` reports each process, the database, Redis and the encryption key id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.crypto import Cipher
from common.settings import load_settings
from common.version import VERSION
from tests.support.system import make_system

SCRIPT = Path(sys.executable).parent / "authport"  # the console script pip installed from pyproject.toml
DOTENV_VARS = ("NANGO_DATABASE_URL", "NANGO_ENCRYPTION_KEY", "INTERNAL_API_KEY", "NANGO_SECRET_KEY_DEV",
               "NANGO_SECRET_KEY_PROD", "SERVER_PORT", "STORE_PORT", "AUTH_PORT", "PROXY_PORT", "DASHBOARD_PORT",
               "GATEWAY_HOST", "DATA_DIR")


def shell() -> dict[str, str]:
    """An operator's shell: none of Authport's variables set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("NANGO_", "AUTHPORT_")) and k not in DOTENV_VARS}


def authport(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env or shell(), capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("cli")
    system = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}").start()
    workdir = tmp_dir / "checkout"
    workdir.mkdir()
    (workdir / ".env").write_text("# as make up wrote it\n" + "".join(f"{name}={system.env[name]}\n"
                                                                       for name in DOTENV_VARS))
    yield system, workdir
    system.stop()


def test_the_script_is_installed_and_helps_on_every_level(tmp_path):
    assert SCRIPT.exists(), "pip install did not create the authport console script"
    top = authport(tmp_path, "--help")
    assert top.returncode == 0 and "up" in top.stdout and "admin" in top.stdout and "status" in top.stdout
    assert authport(tmp_path, "--version").stdout.strip() == f"authport {VERSION}"
    for level in (("up", "--help"), ("status", "--help"), ("admin", "--help"), ("admin", "keys", "--help"),
                  ("admin", "keys", "show", "--help")):
        shown = authport(tmp_path, *level)
        assert shown.returncode == 0 and shown.stdout.startswith("usage: authport"), (level, shown.stderr)
    wrong = authport(tmp_path, "admin", "nonsense")
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1 and "authport admin" in wrong.stderr
    unknown = authport(tmp_path, "frobnicate")
    assert unknown.returncode == 2


def test_admin_reads_the_dotenv_that_make_up_wrote(running):
    system, workdir = running
    shown = authport(workdir, "admin", "keys", "show", "--env", "dev")
    assert shown.returncode == 0, shown.stderr
    assert system.dev_key in shown.stdout
    # Without the .env (another directory) it refuses in one line, as it always did.
    elsewhere = authport(workdir.parent, "admin", "keys", "show", "--env", "dev",
                         env={**shell(), "NANGO_DATABASE_URL": system.database_url})
    assert elsewhere.returncode == 2 and len(elsewhere.stderr.strip().splitlines()) == 1
    assert "NANGO_ENCRYPTION_KEY" in elsewhere.stderr


def test_a_shell_variable_wins_over_the_dotenv(running):
    _system, workdir = running
    other = workdir.parent / "other.db"
    done = authport(workdir, "status", env={**shell(), "NANGO_DATABASE_URL": f"sqlite:///{other}"})
    assert done.returncode == 1 and "other.db  no database file yet" in done.stdout


def test_status_reports_every_process_the_database_and_the_key_id(running):
    system, workdir = running
    done = authport(workdir, "status")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    for name in ("gateway", "store", "auth", "proxy", "dashboard"):
        assert "  ready  version " + VERSION in lines[name], done.stdout
    assert "store ok" in lines["gateway"] and "database ok" in lines["store"]
    assert lines["database"].endswith("ok") and "not configured" in lines["redis"]
    key_id = Cipher(load_settings(system.env).NANGO_ENCRYPTION_KEY, ()).primary_id
    assert lines["key"] == f"key id    {key_id}"
    for secret in (system.env["NANGO_ENCRYPTION_KEY"], system.env["INTERNAL_API_KEY"], system.dev_key):
        assert secret not in done.stdout


def test_status_names_a_process_that_is_down(running):
    system, workdir = running
    proxy = system.procs["proxy"]
    proxy.send_signal(signal.SIGINT)
    proxy.wait(timeout=20)
    try:
        done = authport(workdir, "status")
        assert done.returncode == 1
        lines = {line.split()[0]: line for line in done.stdout.splitlines()}
        assert "down (no answer)" in lines["proxy"] and "ready" in lines["store"]
        assert "proxy error" in lines["gateway"] or "proxy" in lines["gateway"]
    finally:
        system.procs["proxy"] = system.spawn("proxy", "services.proxy", system.env)
        system._wait("proxy", system.service_url("proxy"), 40)


def test_the_readmes_authport_examples_run_as_printed(running):
    """The block under "The `authport` command", each line but `up` (which the fixture stands for)."""
    import re
    import shlex

    system, workdir = running
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## The `authport` command", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[0] == ".venv/bin/authport up" and len(commands) >= 3
    for command in commands[1:]:
        argv = shlex.split(command)
        assert argv[0] == ".venv/bin/authport", command
        done = authport(workdir, *argv[1:])
        assert done.returncode == 0, (command, done.stdout, done.stderr)
