"""The webhook outbox: an auth webhook outlives a receiver that is down, a kill -9 of auth before
or during its delivery, and two auth processes sharing the database; every attempt is recorded,
and a receiver that never accepts one ends with the webhook failed, which the admin can queue again."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import pytest

from tests.api.builders import gateway
from tests.auth.conftest import BACKENDS, write_catalogue
from tests.auth.test_capture import public_key_of
from tests.auth.test_connect_sessions import make_integration
from tests.auth.test_webhooks import capture_api_key
from tests.store import admin
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import free_port, make_system
from tests.support.webhook_receiver import WebhookReceiver

# Ten attempts about a second apart; a lease outlives an attempt (2 s) and expires soon after a kill.
FAST = {"WEBHOOK_RETRY_DELAYS": "0.5,1,1,1,1,1,1,1,1", "WEBHOOK_POLL_SECONDS": "0.2",
        "WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_LEASE_SECONDS": "4"}
MAX_ATTEMPTS = 10


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory, oauth_server):
    tmp_dir = tmp_path_factory.mktemp(f"outbox-{request.param}")
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    running = make_system(tmp_dir, url, DEFAULT_PLAN="growth", PROVIDERS_FILE=write_catalogue(tmp_dir, oauth_server),
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8", LOG_LEVEL="info", **FAST).start()
    yield running
    running.stop()
    if request.param == "postgres":
        drop_postgres_database(url)


def receiver_on(port: int) -> WebhookReceiver:
    """A receiver on `port` (which was down until now)."""
    running = WebhookReceiver()
    handler = running.server.RequestHandlerClass
    running.server.server_close()
    running.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    running.server.daemon_threads = True
    return running.start()


def hook_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/hooks/nango"


def set_webhook_url(system, url: str | None) -> None:
    assert gateway(system).patch("/environment/webhook", json={"url": url}).status_code == 200


def new_connection(system, oauth_server) -> str:
    key = make_integration(gateway(system), "test-apikey")
    return capture_api_key(system, oauth_server, key, public_key=public_key_of(system))


def assert_signed(system, delivery) -> None:
    expected = hmac.new(system.dev_key.encode(), delivery.raw, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Nango-Hmac-Sha256"] == expected
    assert delivery.body["type"] == "auth" and delivery.body["operation"] == "creation"


def outbox(system, state: str = "all") -> list[dict]:
    done = admin(system.env, "webhooks", "list", "--state", state, "--limit", "500")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def row_of(system, connection_id: str) -> dict:
    [row] = [r for r in outbox(system) if r["connection_id"] == connection_id]
    return row


def webhook_records(system, connection_id: str) -> list[dict]:
    """The operation records of the webhook attempts about `connection_id`, oldest first."""
    done = admin(system.env, "operations", "list", "--env", "dev", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return sorted((r for r in records if r["kind"] == "webhook" and r["connection_id"] == connection_id),
                  key=lambda r: r["id"])


def wait_until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


def kill_auth(system) -> None:
    """SIGKILL the auth process this test system started, and its worker (same process group)."""
    proc = system.procs["auth"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def start_auth(system) -> None:
    system.procs["auth"] = system.spawn("auth", "services.auth", system.env)
    system._wait("auth", system.service_url("auth"), 40)


def test_a_webhook_waits_for_a_receiver_that_is_down(system, oauth_server):
    port = free_port()
    set_webhook_url(system, hook_url(port))
    connection_id = new_connection(system, oauth_server)
    wait_until(lambda: row_of(system, connection_id)["attempts"] >= 2)  # refused, retried, refused
    receiver = receiver_on(port)
    try:
        [delivery] = receiver.wait_for(connection_id, timeout=20)
        assert_signed(system, delivery)
        assert wait_until(lambda: row_of(system, connection_id)["state"] == "delivered")
        time.sleep(1.5)
        assert len(receiver.about(connection_id)) == 1  # once
        assert not [r for r in outbox(system, "open") if r["connection_id"] == connection_id]
    finally:
        receiver.stop()
        set_webhook_url(system, None)


def test_a_webhook_survives_a_kill_of_auth_before_its_delivery(system, oauth_server):
    port = free_port()
    set_webhook_url(system, hook_url(port))
    connection_id = new_connection(system, oauth_server)
    kill_auth(system)  # the connection is saved; its webhook has not reached anyone
    assert row_of(system, connection_id)["state"] == "pending"
    receiver = receiver_on(port)
    try:
        start_auth(system)
        [delivery] = receiver.wait_for(connection_id, timeout=20)
        assert_signed(system, delivery)
    finally:
        receiver.stop()
        set_webhook_url(system, None)


class Silent:
    """Accepts connections and never answers: an attempt that is in flight when auth dies."""

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                continue

    def close(self):
        """Stop listening (a blocked accept would keep the port bound) and drop what was accepted."""
        self.done.set()
        self.thread.join()
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def test_a_webhook_leased_by_an_auth_that_dies_mid_delivery_is_sent_again(system, oauth_server):
    port = free_port()
    silent = Silent(port)
    set_webhook_url(system, hook_url(port))
    receiver = None
    try:
        connection_id = new_connection(system, oauth_server)
        wait_until(lambda: silent.accepted, timeout=10)
        kill_auth(system)  # mid-attempt: the row stays leased by a process that is gone
        assert row_of(system, connection_id)["leased_by"]
        silent.close()
        receiver = receiver_on(port)
        start_auth(system)
        [delivery] = receiver.wait_for(connection_id, timeout=20)  # once the dead worker's lease expired
        assert_signed(system, delivery)
    finally:
        silent.close()
        if receiver is not None:
            receiver.stop()
        set_webhook_url(system, None)


def test_two_auth_processes_deliver_each_webhook_once(system, oauth_server):
    second = system.add_process("auth-2", "services.auth", "AUTH_PORT")
    port = free_port()
    set_webhook_url(system, hook_url(port))  # down while they are queued: both processes take the retries
    receiver = None
    try:
        key = make_integration(gateway(system), "test-apikey")
        public = public_key_of(system)
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda _: capture_api_key(system, oauth_server, key, public_key=public), range(20)))
        receiver = receiver_on(port)
        for connection_id in ids:
            receiver.wait_for(connection_id, timeout=30)
        time.sleep(2.0)  # longer than a poll and an attempt: a second delivery would have arrived
        assert sorted(len(receiver.about(c)) for c in ids) == [1] * 20
        assert len(receiver.deliveries) == 20
        assert second.startswith("http://127.0.0.1:")
    finally:
        proc = system.procs.pop("auth-2")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        if receiver is not None:
            receiver.stop()
        set_webhook_url(system, None)


def test_two_failures_then_delivered_on_the_third_attempt_all_recorded(system, oauth_server):
    receiver = WebhookReceiver().start()
    receiver.statuses = [500, 500]
    set_webhook_url(system, receiver.url)
    try:
        connection_id = new_connection(system, oauth_server)
        attempts = receiver.wait_for(connection_id, 3, timeout=20)
        assert len({a.raw for a in attempts}) == 1  # the same bytes, the same signature
        assert len({a.headers["X-Nango-Hmac-Sha256"] for a in attempts}) == 1
        assert wait_until(lambda: row_of(system, connection_id)["state"] == "delivered")
        row = row_of(system, connection_id)
        assert (row["attempts"], row["last_status"], row["last_error"]) == (3, 200, None)
        records = webhook_records(system, connection_id)
        assert [(r["outcome"], r["status"], r["attempts"], r["success"]) for r in records] == [
            ("retrying", 500, 1, False), ("retrying", 500, 2, False), ("delivered", 200, 3, True)]
        assert all(r["error_code"] in (None, "status_500") and r["duration_ms"] >= 0 for r in records)
        assert system.dev_key not in json.dumps(records)
        time.sleep(1.5)
        assert len(receiver.about(connection_id)) == 3
    finally:
        receiver.stop()
        set_webhook_url(system, None)


def test_a_receiver_that_always_fails_ends_failed_and_the_admin_can_retry(system, oauth_server):
    receiver = WebhookReceiver().start()
    receiver.statuses = [503] * MAX_ATTEMPTS
    set_webhook_url(system, receiver.url)
    try:
        connection_id = new_connection(system, oauth_server)
        row = wait_until(lambda: (r := row_of(system, connection_id))["state"] == "failed" and r, timeout=40)
        assert (row["attempts"], row["last_status"], row["last_error"]) == (MAX_ATTEMPTS, 503, "status_503")
        assert row["id"] in {r["id"] for r in outbox(system, "failed")}
        assert len(receiver.about(connection_id)) == MAX_ATTEMPTS
        records = webhook_records(system, connection_id)
        assert [r["outcome"] for r in records] == ["retrying"] * (MAX_ATTEMPTS - 1) + ["failed"]
        again = admin(system.env, "webhooks", "retry", str(row["id"]))
        assert again.returncode == 0, again.stderr
        assert len(receiver.wait_for(connection_id, MAX_ATTEMPTS + 1, timeout=20)) == MAX_ATTEMPTS + 1
        assert wait_until(lambda: row_of(system, connection_id)["state"] == "delivered")
        assert admin(system.env, "webhooks", "retry", str(row["id"])).returncode == 2  # delivered: not failed
    finally:
        receiver.stop()
        set_webhook_url(system, None)


def test_delivery_settings_are_checked_at_start():
    from common.settings import SettingsError, load_settings
    from common.startup import StartupError
    from services.auth.app import create_app

    with pytest.raises(SettingsError, match="^WEBHOOK_RETRY_DELAYS: "):
        load_settings({"WEBHOOK_RETRY_DELAYS": "1,soon"})
    assert load_settings({"WEBHOOK_RETRY_DELAYS": " 2, 0.5 "}).WEBHOOK_RETRY_DELAYS == (2.0, 0.5)
    short = load_settings({"INTERNAL_API_KEY": "k", "WEBHOOK_LEASE_SECONDS": "5", "WEBHOOK_TIMEOUT_SECONDS": "10"})
    with pytest.raises(StartupError, match="^WEBHOOK_LEASE_SECONDS: "):
        create_app(short)
