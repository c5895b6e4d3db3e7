"""The fault suite's world and its load: two gateways, two stores, two proxies and one auth on
Postgres and a private Redis, under steady mixed load, while one fault at a time is applied and
repaired. Used by tests/faults/test_fault_suite.py (which asserts) and bench/faults.py (which prints).

The stores and the proxies each sit behind a small TCP balancer, as a Kubernetes Service or a load
balancer would put them: round-robin, skipping a backend that refuses the connection. The load's
client does the same across the two gateways (a refused connection is tried on the other one, as an
external balancer's health check would). A request cut off mid-flight by a kill is counted as
`dropped`: its client never got an answer, so it is neither an error answer nor an acknowledged write.

Per fault the report gives: requests sent, answers that are 5xx other than the documented 503s,
documented 503s, dropped requests, unexpected 4xx (429s), acknowledged writes lost, auth webhooks lost,
and the seconds from the repair being issued (the restart command, Redis started) to the last failed
request, so a process's boot time counts; 0 when nothing failed after it."""

from __future__ import annotations

import itertools
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from tests.support.databases import create_postgres_database, drop_postgres_database, raw_rows
from tests.support.redis_server import RedisServer
from tests.support.system import ROOT, free_port, make_system
from tests.support.upstream import Upstream
from tests.support.webhook_receiver import WebhookReceiver

# The 503s the README documents: a service that cannot be reached, a rate-limit store that cannot.
DOCUMENTED_503 = {"service_unavailable", "rate_limit_unavailable"}
WEBHOOK_GRACE = 60.0  # seconds after the run within which every acknowledged flow's webhook must arrive
FAST_WEBHOOKS = {"WEBHOOK_RETRY_DELAYS": "0.5,1,1,2,2,4", "WEBHOOK_POLL_SECONDS": "0.2",
                 "WEBHOOK_TIMEOUT_SECONDS": "3", "WEBHOOK_LEASE_SECONDS": "6"}


# --- a TCP balancer ---------------------------------------------------------------------------------


class Balancer:
    """Round-robin TCP forwarding from one loopback port to live backends (a refused one is skipped).
    A killed backend's open connections are closed both ways, as a real balancer's would be."""

    def __init__(self, backends: list[int]):
        self.backends = backends
        self.port = free_port()
        self._cycle = itertools.cycle(range(len(backends)))
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._cycle)]
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
        return None

    def _serve(self, client: socket.socket) -> None:
        backend = self._connect()
        if backend is None:
            client.close()
            return
        backend.settimeout(None)
        pipe = selectors.DefaultSelector()
        pipe.register(client, selectors.EVENT_READ, backend)
        pipe.register(backend, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in pipe.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            pipe.close()
            client.close()
            backend.close()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()


# --- processes that can be killed and started again --------------------------------------------------


@dataclass
class Process:
    name: str
    module: str
    env: dict[str, str]
    port: int
    log_dir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log_dir / f"{self.name}.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, "-m", self.module], env=self.env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s")

    def kill9(self) -> None:
        """SIGKILL the master and its workers (one process group), as a crashed container would be."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class World:
    tmp_dir: Path
    database_url: str
    redis: RedisServer
    upstream: Upstream
    receiver: WebhookReceiver
    processes: dict[str, Process]
    balancers: list[Balancer]
    key: str  # the dev secret key
    api_key_integration: str = ""
    read_connections: list[str] = field(default_factory=list)

    @property
    def gateways(self) -> list[str]:
        return [p.url for name, p in self.processes.items() if name.startswith("gateway")]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp_dir.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop(signal.SIGINT, timeout=15)
        for balancer in self.balancers:
            balancer.stop()


def build_world(tmp_dir: Path) -> World:
    """Start everything; the caller stops it with close_world."""
    redis_server = RedisServer(tmp_dir).start()
    upstream = Upstream("127.0.0.1")
    receiver = WebhookReceiver().start()
    providers = {"fault-key": {"auth_mode": "API_KEY", "display_name": "Fault key",
                               "proxy": {"base_url": upstream.url, "headers": {"x-api-key": "${apiKey}"}}}}
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    url = create_postgres_database()
    base = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="enterprise",
                       OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", NANGO_REDIS_URL=redis_server.url, LOG_LEVEL="warning",
                       WORKERS="1", THREADS="8", **FAST_WEBHOOKS).env
    ports = {name: free_port() for name in ("store-1", "store-2", "proxy-1", "proxy-2", "auth", "gateway-1",
                                            "gateway-2")}
    stores, proxies = Balancer([ports["store-1"], ports["store-2"]]), Balancer([ports["proxy-1"], ports["proxy-2"]])

    def process(name: str, module: str, port_var: str, **env: str) -> Process:
        return Process(name, module, {**base, port_var: str(ports[name]), **env}, ports[name], tmp_dir)

    auth_url = f"http://127.0.0.1:{ports['auth']}"
    processes = {
        "store-1": process("store-1", "services.store", "STORE_PORT"),
        "store-2": process("store-2", "services.store", "STORE_PORT"),
        "auth": process("auth", "services.auth", "AUTH_PORT", STORE_URL=stores.url),
        "proxy-1": process("proxy-1", "services.proxy", "PROXY_PORT", STORE_URL=stores.url),
        "proxy-2": process("proxy-2", "services.proxy", "PROXY_PORT", STORE_URL=stores.url),
        "gateway-1": process("gateway-1", "gateway", "SERVER_PORT", STORE_URL=stores.url, AUTH_URL=auth_url,
                             PROXY_URL=proxies.url),
        "gateway-2": process("gateway-2", "gateway", "SERVER_PORT", STORE_URL=stores.url, AUTH_URL=auth_url,
                             PROXY_URL=proxies.url),
    }
    world = World(tmp_dir, url, redis_server, upstream, receiver, processes, [stores, proxies],
                  base["NANGO_SECRET_KEY_DEV"])
    try:
        for name in processes:
            processes[name].start()
        prepare(world)
    except BaseException:
        close_world(world)
        raise
    return world


def close_world(world: World) -> None:
    try:
        world.stop()
    finally:
        world.redis.stop()
        world.upstream.stop()
        world.receiver.stop()
        drop_postgres_database(world.database_url)


def client(world: World) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {world.key}"
    return session


def prepare(world: World) -> None:
    api, base = client(world), world.gateways[0]
    world.api_key_integration = "fault-key-" + uuid.uuid4().hex[:8]
    made = api.post(base + "/integrations", json={"unique_key": world.api_key_integration, "provider": "fault-key"})
    assert made.status_code == 200, made.text
    hook = api.patch(base + "/environment/webhook", json={"url": world.receiver.url})
    assert hook.status_code == 200, hook.text
    for n in range(8):
        connection_id = f"read-{n}"
        done = api.post(base + "/connections", json={
            "provider_config_key": world.api_key_integration, "connection_id": connection_id,
            "credentials": {"type": "API_KEY", "apiKey": f"key-{n}"}})
        assert done.status_code == 201, done.text
        world.read_connections.append(connection_id)


# --- the load -----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    at: float  # time.monotonic() when the answer (or the failure) came
    op: str
    status: int | None  # None: dropped (no answer)
    code: str = ""

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500

    @property
    def refused(self) -> bool:
        """A 4xx the load does not expect (it sends only valid requests): 429, or a 404 for a write."""
        return self.status is not None and 400 <= self.status < 500

    @property
    def undocumented(self) -> bool:
        return self.status is not None and self.status >= 500 and not (
            self.status == 503 and self.code in DOCUMENTED_503)


@dataclass
class Acked:
    """A write the API acknowledged (2xx): an imported connection or a metadata value, or a flow's
    connection whose creation webhook must arrive."""
    kind: str
    connection_id: str
    value: str = ""


class Load:
    """Closed-loop clients cycling through reads, proxied calls, imports, metadata writes and
    API-key flows (each flow: a connect session, then the capture)."""

    def __init__(self, world: World, threads: int = 6, pause: float = 0.3):
        # About 20 requests a second: steady, and under the enterprise plan's 2,000 a minute, so a
        # 429 in the report is a fault's doing, not the load's.
        self.world, self.threads, self.pause = world, threads, pause
        self.outcomes: list[Outcome] = []
        self.acked: list[Acked] = []
        self.lock = threading.Lock()
        self.running = False
        self._workers: list[threading.Thread] = []
        self._gateway_turn = itertools.count()

    def start(self) -> None:
        self.running = True
        for n in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self.running = False
        for worker in self._workers:
            worker.join(timeout=60)

    def _loop(self, n: int) -> None:
        session = client(self.world)
        ops = itertools.cycle([self._read, self._proxy, self._import, self._read, self._metadata, self._proxy,
                               self._flow])
        for _ in range(n):
            next(ops)
        while self.running:
            next(ops)(session)
            time.sleep(self.pause)

    def _send(self, session: requests.Session, op: str, method: str, path: str, **kwargs) -> requests.Response | None:
        """One request through a gateway; a refused connection is tried on the next gateway."""
        gateways = self.world.gateways
        first = next(self._gateway_turn)
        for attempt in range(len(gateways)):
            base = gateways[(first + attempt) % len(gateways)]
            try:
                response = session.request(method, base + path, timeout=30, **kwargs)
            except requests.ConnectionError as exc:
                if _refused(exc) and attempt + 1 < len(gateways):
                    continue
                self._record(Outcome(time.monotonic(), op, None))
                return None
            except requests.RequestException:
                self._record(Outcome(time.monotonic(), op, None))
                return None
            code = ""
            if response.status_code >= 400:
                try:
                    code = response.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = "(not the JSON error shape)"
            self._record(Outcome(time.monotonic(), op, response.status_code, code))
            return response
        return None

    def _record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def _ack(self, acked: Acked) -> None:
        with self.lock:
            self.acked.append(acked)

    def _pick(self) -> str:
        return self.world.read_connections[next(self._gateway_turn) % len(self.world.read_connections)]

    def _read(self, session) -> None:
        self._send(session, "read", "GET", f"/connections/{self._pick()}",
                   params={"provider_config_key": self.world.api_key_integration})

    def _proxy(self, session) -> None:
        self._send(session, "proxy", "GET", "/proxy/ping", headers={
            "Connection-Id": self._pick(), "Provider-Config-Key": self.world.api_key_integration})

    def _import(self, session) -> None:
        connection_id = "imp-" + uuid.uuid4().hex[:12]
        done = self._send(session, "import", "POST", "/connections", json={
            "provider_config_key": self.world.api_key_integration, "connection_id": connection_id,
            "credentials": {"type": "API_KEY", "apiKey": "k-" + connection_id}})
        if done is not None and done.status_code == 201:
            self._ack(Acked("import", connection_id))

    def _metadata(self, session) -> None:
        connection_id, value = self._pick(), uuid.uuid4().hex
        done = self._send(session, "metadata", "PATCH", "/connection/metadata", json={
            "connection_id": connection_id, "provider_config_key": self.world.api_key_integration,
            "metadata": {value: 1}})
        if done is not None and done.status_code == 200:
            self._ack(Acked("metadata", connection_id, value))

    def _flow(self, session) -> None:
        made = self._send(session, "session", "POST", "/connect/sessions", json={
            "end_user": {"id": "eu-" + uuid.uuid4().hex[:8]},
            "allowed_integrations": [self.world.api_key_integration]})
        if made is None or made.status_code not in (200, 201):
            return
        token = made.json()["data"]["token"]
        plain = requests.Session()  # a browser: no Authorization header, the session token in the query
        plain.trust_env = False
        saved = self._send(plain, "flow", "POST", f"/api-auth/api-key/{self.world.api_key_integration}",
                           params={"connect_session_token": token}, json={"apiKey": "flow-" + token[-8:]})
        if saved is not None and saved.status_code == 200:
            self._ack(Acked("flow", saved.json()["connectionId"]))

    def since(self, start: float) -> tuple[list[Outcome], list[Acked]]:
        with self.lock:
            return [o for o in self.outcomes if o.at >= start], list(self.acked)


def _refused(exc: Exception) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "NewConnectionError" in text


# --- faults ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    apply: Callable[[World], None]
    repair: Callable[[World], None]
    outage: float = 2.0  # seconds between apply and repair


def kill(name: str) -> Fault:
    return Fault(f"kill -9 {name}", lambda w: w.processes[name].kill9(), lambda w: w.processes[name].start())


FAULTS = [
    kill("gateway-1"),
    kill("store-1"),
    kill("proxy-1"),
    kill("auth"),
    Fault("Redis stopped, then started", lambda w: w.redis.stop(), lambda w: w.redis.start(), outage=4.0),
    Fault("auth stopped (SIGTERM), then started", lambda w: w.processes["auth"].stop(),
          lambda w: w.processes["auth"].start(), outage=3.0),
]


@dataclass
class Row:
    fault: str
    sent: int
    undocumented_5xx: int
    documented_503: int
    dropped: int
    refused_4xx: int
    acked_writes: int
    lost_writes: int
    flows: int
    lost_webhooks: int
    recovery_seconds: float
    failures: list[str] = field(default_factory=list)  # a sample of what failed, for the report


def run(world: World, faults=FAULTS, steady: float = 2.0, after: float = 3.0) -> list[Row]:
    """Apply each fault in turn under load; verify every write acknowledged during it, and every
    flow's webhook, once all have run."""
    load = Load(world)
    load.start()
    windows = []
    try:
        time.sleep(steady)
        for fault in faults:
            start = time.monotonic()
            acked_before = len(load.since(start)[1])
            fault.apply(world)
            time.sleep(fault.outage)
            repaired = time.monotonic()  # the restart is issued (the process then boots)
            fault.repair(world)
            time.sleep(after)
            end = time.monotonic()
            outcomes, acked = load.since(start)
            windows.append((fault, start, repaired, end, [o for o in outcomes if o.at < end],
                            acked[acked_before:]))
    finally:
        load.stop()
    missing_webhooks = _webhooks_missing(world, [a for w in windows for a in w[5] if a.kind == "flow"])
    stored = _stored_connections(world)
    rows = []
    for fault, _start, repaired, _end, outcomes, acked in windows:
        failed = [o for o in outcomes if o.failed or o.refused]
        last_failure = max((o.at for o in failed), default=repaired)
        writes = [a for a in acked if a.kind in ("import", "metadata")]
        flows = [a for a in acked if a.kind == "flow"]
        rows.append(Row(
            fault=fault.name, sent=len(outcomes), undocumented_5xx=sum(o.undocumented for o in outcomes),
            documented_503=sum(o.status == 503 and not o.undocumented for o in outcomes),
            dropped=sum(o.status is None for o in outcomes), refused_4xx=sum(o.refused for o in outcomes),
            acked_writes=len(writes), lost_writes=sum(not _persisted(stored, a) for a in writes), flows=len(flows),
            lost_webhooks=sum(a.connection_id in missing_webhooks for a in flows),
            recovery_seconds=round(max(0.0, last_failure - repaired), 2),
            failures=sorted({f"{o.op} {o.status} {o.code}".strip() for o in failed})[:8]))
    return rows


def _stored_connections(world: World) -> dict[str, dict]:
    """Every connection in the database (read there, not through the API): id -> metadata."""
    rows = raw_rows(world.database_url, "SELECT connection_id, metadata FROM connections WHERE deleted_at IS NULL")
    return {cid: (json.loads(meta) if isinstance(meta, str) else meta) or {} for cid, meta in rows}


def _persisted(stored: dict[str, dict], acked: Acked) -> bool:
    return acked.connection_id in stored and (acked.kind != "metadata" or acked.value in stored[acked.connection_id])


def _webhooks_missing(world: World, flows: list[Acked]) -> set[str]:
    """The flow connections whose creation webhook has not arrived within WEBHOOK_GRACE seconds."""
    wanted = {a.connection_id for a in flows}
    deadline = time.monotonic() + WEBHOOK_GRACE
    while True:
        arrived = set()
        for delivery in list(world.receiver.deliveries):
            body = delivery.body
            if body.get("type") == "auth" and body.get("operation") == "creation":
                arrived.add(body.get("connectionId"))
        missing = wanted - arrived
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)


def table(rows: list[Row]) -> str:
    head = (f"{'fault':40} {'sent':>6} {'5xx!':>5} {'503':>5} {'drop':>5} {'4xx':>4} {'writes':>6} {'lost':>5} "
            f"{'flows':>5} {'hooks lost':>10} {'recover s':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.fault:40} {r.sent:6} {r.undocumented_5xx:5} {r.documented_503:5} {r.dropped:5} "
                     f"{r.refused_4xx:4} {r.acked_writes:6} {r.lost_writes:5} {r.flows:5} {r.lost_webhooks:10} "
                     f"{r.recovery_seconds:9.2f}")
        if r.failures:
            lines.append(f"{'':40} failed: {', '.join(r.failures)}")
    return "\n".join(lines)
