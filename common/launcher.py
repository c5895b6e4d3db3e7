"""`make up`: run the five processes locally on the embedded defaults, stop them together.

Reads `.env` in the working directory (creating it with generated secrets on first run); a
variable already set in the environment wins over the same one in `.env`. Relative paths
(`DATA_DIR`, `.env`) are those of the working directory; the processes' code is found from this
file's checkout, so `python -m common.launcher` works from any directory.

Start-up is honest: every port is checked before anything starts (a busy one fails in one line),
each process counts as up only when its /healthz confirms this start's token (another instance on
the same port never does), and the banner prints only once all five are up. Each process's output
is passed on line by line, prefixed with its name.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import urllib3
from urllib3.exceptions import InsecureRequestWarning

from common import envfile
from common.httpapp import LAUNCH_HEADER
from common.ports import listen_problem
from common.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("store", "auth", "proxy", "dashboard", "gateway")
MODULES = {"store": "services.store", "auth": "services.auth", "proxy": "services.proxy",
           "dashboard": "services.dashboard", "gateway": "gateway"}
# What `make up` sets unless the environment or `.env` does: the gateway on loopback only (a
# laptop on a café's network should not offer the API to it), and a quick stop on Ctrl-C.
LOCAL_DEFAULTS = {"GATEWAY_HOST": "127.0.0.1", "GRACEFUL_TIMEOUT": "1"}
# Seconds from Ctrl-C: requests in flight may finish for GRACE, then idle workers are told to quit
# at once, and at KILL_AFTER whatever is left is killed (SQLite's WAL and the store's outbox are
# safe under kill -9), so that all is gone well within 3 s even on a busy machine.
GRACE = 0.5
KILL_AFTER = 1.5
QUICK_START = 'README.md, "Quick start with curl"'


class Stopping(Exception):
    """SIGINT or SIGTERM arrived."""


class Signals:
    """Records SIGINT/SIGTERM; the loops poll it (raising from the handler could strike inside
    Popen, between fork and bookkeeping, and orphan a child)."""

    def __init__(self):
        self.received = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, _signum, _frame):
        self.received = True

    def check(self) -> None:
        if self.received:
            raise Stopping


class Output:
    """Pass each child's output on, line by line, prefixed with its name (one lock: no torn lines)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.readers: list[threading.Thread] = []

    def follow(self, name: str, proc: subprocess.Popen) -> None:
        reader = threading.Thread(target=self._copy, args=(f"{name:<7} | ", proc.stdout), daemon=True)
        reader.start()
        self.readers.append(reader)

    def _copy(self, prefix: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            with self.lock:
                sys.stdout.write(prefix + raw.decode("utf-8", "replace").rstrip("\n") + "\n")
                sys.stdout.flush()
        stream.close()

    def finish(self, timeout: float = 0.3) -> None:
        deadline = time.monotonic() + timeout
        for reader in self.readers:
            reader.join(max(0.0, deadline - time.monotonic()))


def say(message: str, error: bool = False) -> None:
    print(f"authport: {message}", file=sys.stderr if error else sys.stdout, flush=True)


def is_ours(http: urllib3.PoolManager, url: str, token: str) -> bool | None:
    """True if the process at `url` was started with `token`, False if another answers, None if none."""
    try:
        answer = http.request("GET", url, headers={LAUNCH_HEADER: token, "Connection": "close"})
    except urllib3.exceptions.HTTPError:
        return None
    if answer.status != 200:
        return None
    try:
        return answer.json().get("launch") == "match"
    except ValueError:
        return False


urllib3.disable_warnings(InsecureRequestWarning)  # only the launcher's own loopback checks (wait_healthy)


def wait_healthy(name: str, url: str, proc: subprocess.Popen, token: str, signals: Signals,
                 timeout: float = 60.0) -> bool:
    # Closed after: no idle connection left. No certificate check: a gateway with TLS_CERT_FILE holds
    # a certificate for its public name, not 127.0.0.1, and only this start's token is asked for.
    with urllib3.PoolManager(retries=False, timeout=2.0, cert_reqs="CERT_NONE") as http:
        return _wait_healthy(http, name, url, proc, token, signals, timeout)


def _wait_healthy(http, name, url, proc, token, signals, timeout) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        signals.check()
        if proc.poll() is not None:
            say(f"{name} exited with status {proc.returncode} (see its lines above)", error=True)
            return False
        found = is_ours(http, url, token)
        if found:
            return True
        if found is False:
            say(f"{name}: another server answers at {url} (it took the port after it was checked)", error=True)
            return False
        time.sleep(0.2)
    say(f"{name} did not answer at {url} within {timeout:.0f} s (see its lines above)", error=True)
    return False


def stop(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every process (gunicorn's graceful stop: requests in flight may finish), SIGQUIT
    their groups after GRACE (an idle worker only notices SIGTERM within its 1-second loop; SIGQUIT
    ends it at once), and SIGKILL any group that lingers past KILL_AFTER."""
    started = time.monotonic()
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    _wait_all(procs, started + GRACE)
    _signal_groups(procs, signal.SIGQUIT)
    _wait_all(procs, started + KILL_AFTER)
    _signal_groups(procs, signal.SIGKILL)
    for proc in procs.values():
        proc.wait()


def _wait_all(procs: dict[str, subprocess.Popen], until: float) -> None:
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.01, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def _signal_groups(procs: dict[str, subprocess.Popen], signum: int) -> None:
    """Signal the process group of each process still running (start_new_session: its workers too)."""
    for proc in procs.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass


def child_environment(cwd: Path) -> dict[str, str]:
    """`.env` (created if needed) under the environment, with this checkout on PYTHONPATH."""
    added = envfile.ensure(cwd / ".env", os.environ)
    if added:
        say(f"wrote {', '.join(added)} to {cwd / '.env'}")
    env = {**LOCAL_DEFAULTS, **envfile.read(cwd / ".env"), **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the terminal as they are written
    env["AUTHPORT_LAUNCH_TOKEN"] = secrets.token_hex(16)
    return env


def listen_address(settings: Settings, name: str) -> tuple[str, str, int]:
    """(variable, host, port) a process listens on."""
    if name == "gateway":
        return "SERVER_PORT", settings.GATEWAY_HOST, settings.SERVER_PORT
    return f"{name.upper()}_PORT", settings.BIND_HOST, getattr(settings, f"{name.upper()}_PORT")


def busy_ports(settings: Settings) -> str | None:
    """One line naming every port that cannot be listened on, or None when all are free."""
    problems, seen = [], {}
    for name in ORDER:
        var, host, port = listen_address(settings, name)
        if port in seen:
            problems.append(f"{port} ({var} and {seen[port]} are the same port)")
        elif problem := listen_problem(host, port):
            problems.append(f"{port} ({var}, on {host}: {problem})")
        seen[port] = var
    if not problems:
        return None
    return ("cannot start, nothing was started: port " + ", ".join(problems) + ". Another Authport (`make up` "
            "elsewhere) or another program holds it: stop it, or choose other ports (e.g. SERVER_PORT=4000 "
            "STORE_PORT=4010 AUTH_PORT=4011 PROXY_PORT=4012 DASHBOARD_PORT=4013 make up).")


def start_all(env: dict[str, str], settings: Settings, procs: dict[str, subprocess.Popen], output: Output,
              signals: Signals) -> bool:
    """Start the processes in order, each once the previous one is up; False if one fails."""
    for name in ORDER:
        signals.check()
        procs[name] = subprocess.Popen([sys.executable, "-m", MODULES[name]], env=env, start_new_session=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output.follow(name, procs[name])
        _, _, port = listen_address(settings, name)
        scheme = "https" if name == "gateway" and settings.TLS_CERT_FILE else "http"
        if not wait_healthy(name, f"{scheme}://127.0.0.1:{port}/healthz", procs[name],
                            env["AUTHPORT_LAUNCH_TOKEN"], signals):
            return False
    return True


def banner(env: dict[str, str], settings: Settings) -> str:
    dev = env.get("NANGO_SECRET_KEY_DEV") or env.get("NANGO_SECRET_KEY") or "(generated: see the store's output)"
    prod = env.get("NANGO_SECRET_KEY_PROD") or "(generated: see the store's output)"
    host = settings.GATEWAY_HOST
    reach = (f"listening on {host} only; GATEWAY_HOST=0.0.0.0 opens it to other machines" if host.startswith("127.")
             else f"listening on {host}: other machines may reach it")
    return "\n".join([
        "",
        f"Authport is running at {settings.server_url}  ({reach})",
        f"  secret key (dev):  {dev}",
        f"  secret key (prod): {prod}",
        "Next steps:",
        f"  - the dashboard: {settings.server_url}/dashboard",
        f"  - try the API with curl: {QUICK_START}",
        f"  - from @nangohq/node: new Nango({{ host: '{settings.server_url}', secretKey: <the dev key> }})",
        "Press Ctrl-C to stop.",
        "",
    ])


def supervise(procs: dict[str, subprocess.Popen], signals: Signals) -> int:
    """Wait for a signal (Stopping) or for a process to die (exit 1)."""
    while True:
        signals.check()
        for name, proc in procs.items():
            if proc.poll() is not None:
                say(f"{name} exited with status {proc.returncode}; stopping", error=True)
                return 1
        time.sleep(0.2)


def main() -> int:
    env = child_environment(Path.cwd())
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        say(str(exc), error=True)
        return 2
    if settings.WORKERS > 1 and not settings.NANGO_REDIS_URL:
        say("WORKERS > 1 needs NANGO_REDIS_URL (in-memory state is per process); using 1 worker")
        env["WORKERS"] = "1"
    if busy := busy_ports(settings):
        say(busy, error=True)
        return 1
    signals = Signals()  # a second Ctrl-C only sets the flag again: the shutdown runs to its end
    procs: dict[str, subprocess.Popen] = {}
    output = Output()
    try:
        if not start_all(env, settings, procs, output, signals):
            return 1
        with output.lock:
            print(banner(env, settings), flush=True)
        return supervise(procs, signals)
    except Stopping:
        return 0
    finally:
        stop(procs)
        output.finish()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
