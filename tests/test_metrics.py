"""/metrics on every process (issue 15): after a scripted workload each counter moved by exactly the
workload's counts; every process, the public gateway included, answers /metrics only to the internal
key (header or bearer token) and 404 to anyone else, the secret key included."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.identity import INTERNAL_KEY_HEADER
from tests.auth.test_capture import post as browser_post
from tests.store import admin
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.oauth_server import OAuthServer, Token
from tests.support.system import make_system
from tests.support.upstream import Upstream
from tests.support.webhook_receiver import WebhookReceiver

PROCESSES = ("gateway", "store", "auth", "proxy")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("metrics")
    oauth, receiver = OAuthServer().start(), WebhookReceiver().start()
    with Upstream("127.0.0.1") as upstream:
        providers = {
            "echo-key": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream.url,
                                                           "headers": {"x-api-key": "${apiKey}"}}},
            "echo-refresh": {"auth_mode": "OAUTH2", "authorization_url": oauth.url + "/authorize",
                             "token_url": oauth.url + "/token", "proxy": {"base_url": upstream.url}},
        }
        (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
        url = create_postgres_database()
        system = make_system(tmp_dir, url, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"), DEFAULT_PLAN="growth",
                             OUTBOUND_ALLOW_CIDRS="127.0.0.1/32", WEBHOOK_POLL_SECONDS="0.2").start()
        try:
            yield system, oauth, receiver
        finally:
            system.stop()
            drop_postgres_database(url)
            receiver.stop()
            oauth.stop()


def url_of(system, process: str) -> str:
    return system.url if process == "gateway" else system.service_url(process)


def scrape(system, process: str) -> dict[tuple[str, tuple], float]:
    answer = requests.get(url_of(system, process) + "/metrics", timeout=10,
                          headers={INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def total(values: dict, name: str, **labels: str) -> float:
    """The sum of `name` over every sample whose labels include `labels`."""
    return sum(v for (n, ls), v in values.items() if n == name and set(labels.items()) <= set(ls))


def snapshot(system) -> dict[str, dict]:
    return {process: scrape(system, process) for process in PROCESSES}


def moved(before: dict, after: dict, process: str, name: str, **labels: str) -> float:
    return total(after[process], name, **labels) - total(before[process], name, **labels)


def test_the_public_door_and_the_services_refuse_metrics_without_the_internal_key(world):
    system = world[0]
    for headers in ({}, {"Authorization": f"Bearer {system.dev_key}"}, {INTERNAL_KEY_HEADER: "wrong"}):
        refused = requests.get(system.url + "/metrics", headers=headers, timeout=10)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    for process in PROCESSES:
        assert requests.get(url_of(system, process) + "/metrics", timeout=10).status_code == 404
        # What a Prometheus scrape config sends: the internal key as a bearer token.
        scraped = requests.get(url_of(system, process) + "/metrics", timeout=10,
                               headers={"Authorization": f"Bearer {system.env['INTERNAL_API_KEY']}"})
        assert scraped.status_code == 200 and "authport_http_requests_total" in scraped.text


def test_counters_move_by_exactly_the_workload(world):
    system, oauth, receiver = world
    api = requests.Session()
    api.trust_env = False
    api.headers["Authorization"] = f"Bearer {system.dev_key}"
    key, connection_id = f"echo-{uuid.uuid4().hex[:6]}", f"conn-{uuid.uuid4().hex[:6]}"
    assert api.post(system.url + "/integrations", json={"unique_key": key, "provider": "echo-key"}).ok
    assert api.post(system.url + "/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                                       "credentials": {"type": "API_KEY", "apiKey": "k"}}).ok
    client = oauth.add_client()
    oauth.tokens["at-1"] = Token(client.client_id, "at-1", "rt-1", "")
    refreshing = f"refresh-{uuid.uuid4().hex[:6]}"
    assert api.post(system.url + "/integrations", json={"unique_key": refreshing, "provider": "echo-refresh",
                                                        "credentials": {"type": "OAUTH2", "client_id": client.client_id,
                                                                        "client_secret": client.client_secret}}).ok
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api.post(system.url + "/connections", json={
        "provider_config_key": refreshing, "connection_id": "oauth-1",
        "credentials": {"type": "OAUTH2", "access_token": "at-1", "refresh_token": "rt-1", "expires_at": expires}}).ok
    assert api.patch(system.url + "/environment/webhook", json={"url": receiver.url}).ok
    time.sleep(1.5)  # the records of the set-up are written (the proxy flushes about every second)
    before = snapshot(system)

    for _ in range(5):
        assert api.get(system.url + "/integrations").status_code == 200
    for n in range(3):
        answer = api.get(system.url + f"/proxy/ping/{n}", headers={"Connection-Id": connection_id,
                                                                   "Provider-Config-Key": key})
        assert answer.status_code == 200
    forced = api.get(system.url + "/connections/oauth-1", params={"provider_config_key": refreshing,
                                                                  "force_refresh": "true"})
    assert forced.status_code == 200
    session = api.post(system.url + "/connect/sessions", json={"end_user": {"id": "u-1"},
                                                               "allowed_integrations": [key]})
    assert session.status_code == 201
    saved = browser_post(system, f"/api-auth/api-key/{key}", {"apiKey": "flow-key"},
                         connect_session_token=session.json()["data"]["token"])
    assert saved.status_code == 200, saved.text
    deadline = time.monotonic() + 15
    while not receiver.about(saved.json()["connectionId"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # the proxy's records reach the store
    after = snapshot(system)

    requests_total = "authport_http_requests_total"
    assert moved(before, after, "gateway", requests_total, route="/integrations", method="GET", status="200") == 5
    assert moved(before, after, "store", requests_total, route="/integrations", method="GET", status="200") == 5
    assert moved(before, after, "gateway", requests_total, route="/proxy/*", method="GET", status="200") == 3
    assert moved(before, after, "gateway", "authport_http_request_duration_seconds_count", route="/proxy/*") == 3
    assert moved(before, after, "proxy", "authport_proxied_calls_total", outcome="ok", status_class="2xx") == 3
    assert moved(before, after, "proxy", "authport_operation_records_total", outcome="queued") == 3
    assert moved(before, after, "proxy", "authport_operation_records_total", outcome="written") == 3
    assert moved(before, after, "store", "authport_refreshes_total", outcome="success") == 1
    assert moved(before, after, "auth", "authport_webhook_deliveries_total", outcome="delivered") == 1
    # Every request through the public door was admitted by the growth plan's limit: 5 + 3 + 1 + 1
    # with the secret key, and the flow with its connect session.
    assert moved(before, after, "gateway", "authport_rate_limit_decisions_total", plan="growth",
                 outcome="admitted") == 11
    assert total(after["store"], "authport_webhook_outbox_depth", state="pending") == 0
    assert total(after["store"], "authport_db_pool_connections", state="in_use") >= 1


def test_429s_are_counted_by_plan(world):
    system = world[0]
    account = f"acct-{uuid.uuid4().hex[:6]}"
    made = admin(system.env, "accounts", "create", account, "--plan", "enterprise", "--rate-limit", "2")
    assert made.returncode == 0, made.stderr
    key = next(line.split()[-1] for line in made.stdout.splitlines() if line.startswith("dev secret_key:"))
    before = scrape(system, "gateway")
    statuses = [requests.get(system.url + "/integrations", headers={"Authorization": f"Bearer {key}"},
                             timeout=10).status_code for _ in range(3)]
    after = scrape(system, "gateway")
    assert statuses == [200, 200, 429]
    name = "authport_rate_limit_decisions_total"
    assert total(after, name, plan="enterprise", outcome="limited") - total(before, name, plan="enterprise",
                                                                            outcome="limited") == 1
    assert total(after, name, plan="enterprise", outcome="admitted") - total(before, name, plan="enterprise",
                                                                             outcome="admitted") == 2
    assert total(after, "authport_http_requests_total", route="/integrations", status="429") - total(
        before, "authport_http_requests_total", route="/integrations", status="429") == 1


def test_the_grafana_dashboard_reads_only_metrics_authport_exports(world):
    import json
    import re
    from pathlib import Path

    from prometheus_client import Counter, Histogram

    from common import metrics

    system = world[0]
    exported = {name for name, _labels in scrape(system, "store")}  # the gauges read at each scrape
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            exported.add(value._name + "_total")
        elif isinstance(value, Histogram):
            exported |= {value._name + "_bucket", value._name + "_count"}
    dashboard = json.loads((Path(__file__).resolve().parents[1] / "deploy/grafana/authport.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\bauthport_[a-z_]+", target["expr"]):
                assert name in exported, (panel["title"], name)
