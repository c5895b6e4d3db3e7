"""Start the five real Authport processes on free loopback ports, as `make up` would."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
MODULES = {"store": "services.store", "auth": "services.auth", "proxy": "services.proxy",
           "dashboard": "services.dashboard", "gateway": "gateway"}


# Ports for the processes tests start come from below the kernel's ephemeral range (32768-60999
# on Linux), so an outgoing connection can never take one between the check and the bind, and
# each pytest-xdist worker draws from its own slice, so two workers never pick the same one.
PORT_RANGE = (10000, 32000)
_handed_out: set[int] = set()


def _port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index, count = int(worker or 0), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    size = (PORT_RANGE[1] - PORT_RANGE[0]) // max(count, 1)
    start = PORT_RANGE[0] + index * size
    return range(start, start + size)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, not handed out before in this test process."""
    ports = _port_slice()
    for _ in range(200):
        port = random.choice(ports)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {ports}")


def new_secrets() -> dict[str, str]:
    return {
        "NANGO_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "INTERNAL_API_KEY": secrets.token_urlsafe(24),
        "NANGO_SECRET_KEY_DEV": str(uuid.uuid4()),
        "NANGO_SECRET_KEY_PROD": str(uuid.uuid4()),
    }


@dataclass
class System:
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    root: Path = ROOT  # the checkout whose code runs (a benchmark may run an older one beside this)

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("TLS_CERT_FILE") else "http"  # the gateway serves TLS only then
        return f"{scheme}://127.0.0.1:{self.env['SERVER_PORT']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[name.upper() + '_PORT']}"

    @property
    def dev_key(self) -> str:
        return self.env["NANGO_SECRET_KEY_DEV"]

    @property
    def prod_key(self) -> str:
        return self.env["NANGO_SECRET_KEY_PROD"]

    @property
    def database_url(self) -> str:
        return self.env["NANGO_DATABASE_URL"]

    def session(self, key: str | None = None) -> requests.Session:
        """A client of the gateway authenticated with `key` (default: the dev secret key)."""
        http = requests.Session()
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {key or self.dev_key}"
        return http

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.log_dir.glob("*.log")))

    def spawn(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen:
        """`python -m module` in its own session, its output appended to `<name>.log`."""
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child holds its own copy of the file
            return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=self.root, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 40.0) -> System:
        """Start the five processes; if one fails, stop the others before raising (none outlives the test)."""
        try:
            for name in ("store", "auth", "proxy", "dashboard", "gateway"):
                self.procs[name] = self.spawn(name, MODULES[name], self.env)
                if name == "store":
                    self._wait(name, self.service_url("store"), timeout)
            for name in ("auth", "proxy", "dashboard"):
                self._wait(name, self.service_url(name), timeout)
            self._wait("gateway", self.url, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.procs[name].returncode}:\n{self.logs()}")
            try:
                with warnings.catch_warnings():  # a readiness probe: the certificate is not its business
                    warnings.simplefilter("ignore")
                    healthy = requests.get(url + "/healthz", timeout=1, verify=False).status_code == 200
                if healthy:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become healthy in {timeout}s:\n{self.logs()}")

    def add_process(self, name: str, module: str, port_var: str, timeout: float = 40.0, **overrides: str) -> str:
        """Start one more process of a kind (own port, same database and secrets); return its URL."""
        env = {**self.env, port_var: str(free_port()), **overrides}
        env = {k: v for k, v in env.items() if v is not None}
        self.procs[name] = self.spawn(name, module, env)
        url = f"http://127.0.0.1:{env[port_var]}"
        self._wait(name, url, timeout)
        return url

    def add_gateway(self, name: str, timeout: float = 40.0, **overrides: str) -> str:
        """Start one more gateway process (own port, same services); return its URL."""
        return self.add_process(name, "gateway", "SERVER_PORT", timeout, **overrides)

    def stop(self) -> None:
        # SIGINT is gunicorn's quick shutdown: a test's keep-alive and websocket connections would
        # otherwise hold a gevent worker for the whole graceful timeout (SIGTERM is tested with the
        # launcher, which is what an operator stops).
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def make_system(tmp_dir: Path, database_url: str, **overrides: str) -> System:
    """A configured (not started) system; `overrides` are extra environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANGO_", "AUTHPORT_"))}
    env.update(new_secrets())
    env.update({
        "SERVER_PORT": str(free_port()), "STORE_PORT": str(free_port()), "AUTH_PORT": str(free_port()),
        "PROXY_PORT": str(free_port()), "DASHBOARD_PORT": str(free_port()), "GATEWAY_HOST": "127.0.0.1",
        "NANGO_DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_dir / "data"), "WORKERS": "1", "THREADS": "8", "LOG_LEVEL": "warning",
    })
    env["NANGO_SERVER_URL"] = f"http://127.0.0.1:{env['SERVER_PORT']}"
    env.update({k: v for k, v in overrides.items() if v is not None})
    for name in [k for k, v in overrides.items() if v is None]:
        env.pop(name, None)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return System(env=env, log_dir=tmp_dir)


@contextlib.contextmanager
def catalogue_system(tmp_dir: Path, backend: str, catalogue: dict, **env: str):
    """A started system on `backend` ("sqlite" or "postgres") whose provider catalogue is `catalogue`;
    stopped, and its Postgres database dropped, on exit."""
    import yaml

    from tests.support.databases import create_postgres_database, drop_postgres_database

    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(catalogue))
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if backend == "sqlite" else create_postgres_database()
    running = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8", **env).start()
    try:
        yield running
    finally:
        running.stop()
        if backend == "postgres":
            drop_postgres_database(url)
