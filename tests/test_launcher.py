"""`make up`: the launcher run from another directory, twice, stopped with SIGTERM; busy ports;
Ctrl-C timed; the gateway on loopback by default."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from common import envfile
from common.launcher import is_ours
from common.settings import VARIABLES
from tests.support.system import ROOT, free_port

# `python -m common.launcher` as run from a checkout, without PYTHONPATH: the launcher itself must
# make its children find the code, whatever the working directory.
LAUNCH = (f"import runpy, sys; sys.path.insert(0, {str(ROOT)!r}); "
          "runpy.run_module('common.launcher', run_name='__main__', alter_sys=True)")
GENERATED = ("NANGO_ENCRYPTION_KEY", "INTERNAL_API_KEY", "NANGO_SECRET_KEY_DEV", "NANGO_SECRET_KEY_PROD")


def clean_environment(**overrides: str) -> dict[str, str]:
    """The variables of a new self-hoster's shell: none of Authport's (GATEWAY_HOST left to `make up`)."""
    names = {var.name for var in VARIABLES} | {"PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith(("NANGO_", "AUTHPORT_"))}
    env.update({"STORE_PORT": str(free_port()), "AUTH_PORT": str(free_port()), "PROXY_PORT": str(free_port()),
                "LOG_LEVEL": "warning"})
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

    def interrupt(self) -> float:
        """Ctrl-C: seconds until the launcher and every process it started are gone."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=40) == 0
        while [pid for pid in self.children if alive(pid)]:
            assert time.monotonic() - started < 40
            time.sleep(0.01)
        return time.monotonic() - started

    def finished(self, timeout: float = 20) -> tuple[int, str]:
        return self.proc.wait(timeout=timeout), self.text()

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


def ports_env(**overrides: str) -> dict[str, str]:
    return clean_environment(SERVER_PORT=str(free_port()), **overrides)


def assert_refused_before_starting(status: int, output: str, port: int) -> None:
    assert status != 0, output
    lines = [line for line in output.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and str(port) in lines[0], output
    assert "Authport is running" not in output and "secret key" not in output, output
    assert " | " not in output, output  # no process printed anything: none was started


def test_busy_port_of_a_foreign_process_fails_before_starting_anything(tmp_path):
    env = ports_env()
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", int(env["AUTH_PORT"])))
        foreign.listen()
        status, output = Launcher(tmp_path, env).finished()
    assert_refused_before_starting(status, output, int(env["AUTH_PORT"]))
    # Nothing listens on the other ports: the store, which comes first, was not started.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(env["STORE_PORT"]))) != 0


def test_second_instance_on_the_same_ports_fails_and_the_first_keeps_running_then_ctrl_c_is_quick(tmp_path):
    env = ports_env()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = Launcher(tmp_path / "one", env)
    try:
        first.wait_running()
        status, output = Launcher(tmp_path / "two", env).finished()
        assert_refused_before_starting(status, output, int(env["SERVER_PORT"]))
        assert [pid for pid in first.children if not alive(pid)] == []
        key = envfile.read(tmp_path / "one" / ".env")["NANGO_SECRET_KEY_DEV"]
        answer = requests.get(f"http://127.0.0.1:{env['SERVER_PORT']}/integrations",
                              headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        # Ctrl-C with no connection open: everything gone within 3 seconds.
        took = first.interrupt()
        print(f"stop after Ctrl-C: {took:.2f} s")
        assert took <= 3.0, first.text()
        assert "authport: stopped" in first.text()
    finally:
        first.cleanup()


def test_ctrl_c_is_quick_with_an_idle_keep_alive_connection_open(tmp_path):
    env = ports_env()
    launcher = Launcher(tmp_path, env)
    try:
        launcher.wait_running()
        idle = socket.create_connection(("127.0.0.1", int(env["SERVER_PORT"])))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        took = launcher.interrupt()
        print(f"stop after Ctrl-C, keep-alive open: {took:.2f} s")
        # An idle keep-alive connection holds a gevent worker: the launcher's SIGQUIT ends it anyway.
        assert took <= 3.0, launcher.text()
        idle.settimeout(2)
        try:
            while idle.recv(4096):  # the rest of the answer, then the end: the gateway closed it
                pass
        except ConnectionResetError:
            pass
        idle.close()
    finally:
        launcher.cleanup()


def test_gateway_listens_on_loopback_only_unless_gateway_host_says_otherwise(tmp_path):
    env = ports_env(LOG_LEVEL="info")
    port = int(env["SERVER_PORT"])
    launcher = Launcher(tmp_path, env)
    try:
        output = launcher.wait_running()
        assert "listening on 127.0.0.1 only" in output
        # At info, each process's access lines come prefixed with its name; probes and polls are left out.
        wrong = {"Authorization": "Bearer 00000000-0000-4000-8000-000000000000"}
        assert requests.get(f"http://127.0.0.1:{port}/integrations", headers=wrong).status_code == 401
        expected = [r"^gateway \| .* access GET /integrations 401 \d+ms request_id=\S+$",
                    r"^store   \| .* access POST /internal/keys/resolve \d{3} \d+ms request_id=\S+$"]
        deadline = time.monotonic() + 5
        while not all(re.search(line, output, re.M) for line in expected):
            assert time.monotonic() < deadline, output
            time.sleep(0.1)
            output = launcher.text()
        assert " access GET /healthz " not in output and "webhook-outbox/lease" not in output
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) == 0
        # Another address of this machine (127.0.0.2 is loopback too, but not 127.0.0.1): nobody
        # listens there; with 0.0.0.0 the connection would be accepted.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.2", port)) != 0
    finally:
        launcher.terminate()
        launcher.cleanup()


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_readiness_is_that_of_this_start_never_of_another_server():
    import urllib3

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib3.PoolManager(retries=False, timeout=2) as pool:
            assert is_ours(pool, f"http://127.0.0.1:{server.server_address[1]}/healthz", "a-token") is False
            assert is_ours(pool, f"http://127.0.0.1:{free_port()}/healthz", "a-token") is None
    finally:
        server.shutdown()
        server.server_close()


def test_a_gateway_with_tls_is_seen_up_over_https(tmp_path):
    from tests.support.tls import TestCA

    cert, key = TestCA(tmp_path / "ca").issue(dns=("authport.example",))  # not 127.0.0.1: no check needed
    env = ports_env(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key))
    (tmp_path / "run").mkdir()
    launcher = Launcher(tmp_path / "run", env)
    try:
        output = launcher.wait_running()
        assert f"Authport is running at https://localhost:{env['SERVER_PORT']}" in output
        assert "InsecureRequestWarning" not in output
        assert launcher.terminate() == 0
    finally:
        launcher.cleanup()
