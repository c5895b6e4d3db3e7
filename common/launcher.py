"""`make up`: run the four processes locally on the embedded defaults, stop them together.

Reads `.env` (creating it with generated secrets on first run); a variable already set in the
environment wins over the same one in `.env`.
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
from common.settings import SettingsError, load_settings

ORDER = ("store", "auth", "proxy", "gateway")
MODULES = {"store": "services.store", "auth": "services.auth", "proxy": "services.proxy", "gateway": "gateway"}


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    http = urllib3.PoolManager(retries=False, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    root = Path.cwd()
    added = envfile.ensure(root / ".env")
    if added:
        print(f"authport: wrote {', '.join(added)} to .env")
    env = {**envfile.read(root / ".env"), **os.environ}
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"authport: {exc}", file=sys.stderr)
        return 2
    if settings.WORKERS > 1 and not settings.NANGO_REDIS_URL:
        print("authport: WORKERS > 1 needs NANGO_REDIS_URL (in-memory state is per process); using 1 worker")
        env["WORKERS"] = "1"
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name in ORDER:
            procs[name] = subprocess.Popen([sys.executable, "-m", MODULES[name]], env=env,
                                           start_new_session=True)
            port = settings.SERVER_PORT if name == "gateway" else getattr(settings, f"{name.upper()}_PORT")
            if not wait_healthy(f"http://127.0.0.1:{port}/healthz", procs[name]) or stopping:
                if not stopping:
                    print(f"authport: {name} did not start (see its output above)", file=sys.stderr)
                return 1
        print(f"\nAuthport is running at {settings.server_url}")
        print(f"  secret key (dev):  {env.get('NANGO_SECRET_KEY_DEV') or env.get('NANGO_SECRET_KEY', '(generated)')}")
        print(f"  secret key (prod): {env.get('NANGO_SECRET_KEY_PROD', '(generated)')}")
        print("Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"authport: {name} exited with status {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        stop(procs)
        print("authport: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
