"""`make up`: the launcher run from another directory, twice, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from common import envfile
from common.settings import VARIABLES
from tests.support.system import ROOT, free_port

# `python -m common.launcher` as run from a checkout, without PYTHONPATH: the launcher itself must
# make its children find the code, whatever the working directory.
LAUNCH = (f"import runpy, sys; sys.path.insert(0, {str(ROOT)!r}); "
          "runpy.run_module('common.launcher', run_name='__main__', alter_sys=True)")
GENERATED = ("NANGO_ENCRYPTION_KEY", "INTERNAL_API_KEY", "NANGO_SECRET_KEY_DEV", "NANGO_SECRET_KEY_PROD")


def clean_environment(**overrides: str) -> dict[str, str]:
    names = {var.name for var in VARIABLES} | {"PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith(("NANGO_", "AUTHPORT_"))}
    env.update({"STORE_PORT": str(free_port()), "AUTH_PORT": str(free_port()), "PROXY_PORT": str(free_port()),
                "GATEWAY_HOST": "127.0.0.1", "LOG_LEVEL": "warning"})
    env.update(overrides)
    return env


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Launcher:
    def __init__(self, cwd: Path, env: dict[str, str]):
        self.output = cwd / f"launcher-{time.monotonic_ns()}.out"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH], cwd=cwd, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.children: set[int] = set()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_running(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C to stop." not in self.text():
            assert self.proc.poll() is None, f"launcher exited with {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"launcher did not come up:\n{self.text()}"
            time.sleep(0.2)
        self.children = descendants(self.proc.pid)
        return self.text()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=40)

    def cleanup(self) -> None:
        """Only if a test failed half-way: stop what this launcher started, by PID."""
        for pid in [self.proc.pid, *self.children]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_make_up_from_another_directory_runs_stops_and_resumes(tmp_path):
    port = free_port()
    first = Launcher(tmp_path, clean_environment(SERVER_PORT=str(port)))
    try:
        output = first.wait_running()
        dot_env = tmp_path / ".env"
        assert stat.S_IMODE(dot_env.stat().st_mode) == 0o600
        saved = envfile.read(dot_env)
        assert set(GENERATED) <= set(saved)
        assert f"http://localhost:{port}" in output
        assert saved["NANGO_SECRET_KEY_DEV"] in output and saved["NANGO_SECRET_KEY_PROD"] in output
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {saved['NANGO_SECRET_KEY_DEV']}"
        created = http.post(f"http://127.0.0.1:{port}/integrations", json={"provider": "github", "unique_key": "gh"})
        assert created.status_code == 200, created.text
        assert len(first.children) >= 8  # four gunicorn masters and their workers
        assert first.terminate() == 0
        time.sleep(0.5)
        assert [pid for pid in first.children if alive(pid)] == []
    finally:
        first.cleanup()

    # A variable in the environment wins over the same one in .env.
    with open(dot_env, "a") as out:
        out.write(f"SERVER_PORT={port}\n")
    other_port = free_port()
    second = Launcher(tmp_path, clean_environment(SERVER_PORT=str(other_port)))
    try:
        second.wait_running()
        assert {k: envfile.read(dot_env)[k] for k in GENERATED} == {k: saved[k] for k in GENERATED}
        listed = http.get(f"http://127.0.0.1:{other_port}/integrations")
        assert listed.status_code == 200, listed.text
        assert [i["unique_key"] for i in listed.json()["data"]] == ["gh"]
        assert second.terminate() == 0
        time.sleep(0.5)
        assert [pid for pid in second.children if alive(pid)] == []
    finally:
        second.cleanup()
