"""`make up`: run the five processes locally on the embedded defaults, stop them together.

Reads `.env` in the working directory (creating it with generated secrets on first run); a
variable already set in the environment wins over the same one in `.env`. Relative paths
(`DATA_DIR`, `.env`) are those of the working directory; the processes' code is found from this
file's checkout, so `python -m common.launcher` works from any directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from common import envfile
from common.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("store", "auth", "proxy", "dashboard", "gateway")
MODULES = {"store": "services.store", "auth": "services.auth", "proxy": "services.proxy",
           "dashboard": "services.dashboard", "gateway": "gateway"}


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


def wait_healthy(url: str, proc: subprocess.Popen, signals: Signals, timeout: float = 60.0) -> bool:
    http = urllib3.PoolManager(retries=False, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        signals.check()
        if proc.poll() is not None:
            return False
        try:
            if http.request("GET", url).status == 200:
                return True
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    return False


def stop(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every process (gunicorn stops its workers), then kill the group of any that lingers."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Each child leads its own process group (start_new_session): this takes its workers too.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def child_environment(cwd: Path) -> dict[str, str]:
    """`.env` (created if needed) under the environment, with this checkout on PYTHONPATH."""
    added = envfile.ensure(cwd / ".env", os.environ)
    if added:
        print(f"authport: wrote {', '.join(added)} to {cwd / '.env'}")
    env = {**envfile.read(cwd / ".env"), **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def port_of(settings: Settings, name: str) -> int:
    return settings.SERVER_PORT if name == "gateway" else getattr(settings, f"{name.upper()}_PORT")


def start_all(env: dict[str, str], settings: Settings, procs: dict[str, subprocess.Popen], signals: Signals) -> bool:
    """Start the processes in order, each once the previous one answers; False if one fails."""
    for name in ORDER:
        signals.check()
        procs[name] = subprocess.Popen([sys.executable, "-m", MODULES[name]], env=env, start_new_session=True)
        if not wait_healthy(f"http://127.0.0.1:{port_of(settings, name)}/healthz", procs[name], signals):
            print(f"authport: {name} did not start (see its output above)", file=sys.stderr)
            return False
    return True


def announce(env: dict[str, str], settings: Settings) -> None:
    dev = env.get("NANGO_SECRET_KEY_DEV") or env.get("NANGO_SECRET_KEY") or "(generated: see the store's output)"
    prod = env.get("NANGO_SECRET_KEY_PROD") or "(generated: see the store's output)"
    print(f"\nAuthport is running at {settings.server_url}")
    print(f"  secret key (dev):  {dev}")
    print(f"  secret key (prod): {prod}")
    print("Press Ctrl-C to stop.\n", flush=True)


def supervise(procs: dict[str, subprocess.Popen], signals: Signals) -> int:
    """Wait for a signal (Stopping) or for a process to die (exit 1)."""
    while True:
        signals.check()
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"authport: {name} exited with status {proc.returncode}; stopping", file=sys.stderr)
                return 1
        time.sleep(0.5)


def main() -> int:
    env = child_environment(Path.cwd())
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"authport: {exc}", file=sys.stderr)
        return 2
    if settings.WORKERS > 1 and not settings.NANGO_REDIS_URL:
        print("authport: WORKERS > 1 needs NANGO_REDIS_URL (in-memory state is per process); using 1 worker")
        env["WORKERS"] = "1"
    signals = Signals()  # a second Ctrl-C only sets the flag again: the shutdown runs to its end
    procs: dict[str, subprocess.Popen] = {}
    try:
        if not start_all(env, settings, procs, signals):
            return 1
        announce(env, settings)
        return supervise(procs, signals)
    except Stopping:
        return 0
    finally:
        stop(procs)
        print("authport: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
