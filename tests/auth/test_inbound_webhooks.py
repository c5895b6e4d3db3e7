"""Provider webhooks (`POST /webhook/:environmentUuid/:providerConfigKey`): signed the way GitHub,
Slack and Shopify sign theirs (the schemes of the built-in catalogue), refused with a wrong
signature, relayed to the environment's webhook URL as Nango's `forward` webhook signed with the
signing key (checked by the Node SDK), through the outbox that outlives a kill of auth, and
recorded in /logs. On SQLite and Postgres."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time

import pytest
import requests
import yaml

from common.providers import BUILTIN_PATH
from tests.api.builders import gateway
from tests.auth.conftest import BACKENDS
from tests.auth.test_webhook_outbox import FAST, hook_url, kill_auth, receiver_on, set_webhook_url, start_auth
from tests.auth.test_webhooks import sdk_verdict
from tests.dashboard.test_access import csrf_token
from tests.support.databases import raw_rows
from tests.support.system import catalogue_system, free_port
from tests.support.webhook_receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec-test-" + "7" * 16
CLIENT_SECRET = "client-secret-test-" + "3" * 16


def hub(secret: str, raw: bytes) -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": "push"}


def slack(secret: str, raw: bytes, sent: float | None = None) -> dict:
    stamp = str(int(time.time() if sent is None else sent))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": "v0=" + digest, "X-Slack-Request-Timestamp": stamp}


def shopify(secret: str, raw: bytes) -> dict:
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode(),
            "X-Shopify-Topic": "orders/create"}


# provider, the secret it signs with, how it signs; the integration's key is the provider's name.
SCHEMES = [("github", WEBHOOK_SECRET, hub), ("slack", WEBHOOK_SECRET, slack), ("shopify", CLIENT_SECRET, shopify)]
SCHEMES_BY_NAME = {name: sign for name, _, sign in SCHEMES}
WRONG = {"github": lambda raw: hub("not-the-secret", raw), "slack": lambda raw: slack(WEBHOOK_SECRET, raw, 1e9),
         "shopify": lambda raw: {**shopify(CLIENT_SECRET, raw + b" "), "X-Shopify-Topic": "orders/create"}}


def catalogue() -> dict:
    """GitHub, Slack and Shopify as the built-in catalogue has them, and one provider whose
    webhooks name their connection (`webhook_connection_id`)."""
    builtin = yaml.safe_load(BUILTIN_PATH.read_text())
    chosen = {name: builtin[name] for name in ("github", "slack", "shopify")}
    chosen["test-hooks"] = {"display_name": "Test hooks", "auth_mode": "OAUTH2",
                            "authorization_url": "http://127.0.0.1:9/authorize", "token_url": "http://127.0.0.1:9/token",
                            "webhook_signature": builtin["github"]["webhook_signature"],
                            "webhook_connection_id": "account.connection"}
    return chosen


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp(f"inbound-{request.param}")
    with catalogue_system(tmp_dir, request.param, catalogue(), LOG_LEVEL="info", **FAST) as running:
        api = gateway(running)
        for provider in ("github", "slack", "shopify", "test-hooks"):
            credentials = {"type": "OAUTH2", "client_id": "id-" + provider, "client_secret": CLIENT_SECRET,
                           "webhook_secret": WEBHOOK_SECRET}
            made = api.post("/integrations", json={"provider": provider, "unique_key": provider,
                                                   "credentials": credentials})
            assert made.status_code == 200, made.text
        yield running


@pytest.fixture(scope="module")
def receiver(system):
    running = WebhookReceiver().start()
    set_webhook_url(system, running.url)
    yield running
    set_webhook_url(system, None)
    running.stop()


def inbound_url(system, key: str) -> str:
    """Where the provider posts the webhooks of integration `key` of the dev environment."""
    [(uid,)] = raw_rows(system.database_url, "SELECT uid FROM environments WHERE name = 'dev'")
    return f"{system.url}/webhook/{uid}/{key}"


def send(system, key: str, raw: bytes, headers: dict, content_type: str = "application/json"):
    return requests.post(inbound_url(system, key), data=raw, headers={"Content-Type": content_type, **headers},
                         timeout=10)


def inbound_records(system, key: str) -> list[dict]:
    answer = gateway(system).get("/logs", params={"type": "webhook.inbound", "integration": key, "limit": 100})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def with_marker(marker: str):
    return lambda body: isinstance(body.get("payload"), dict) and body["payload"].get("marker") == marker


@pytest.mark.parametrize("provider,secret,sign", SCHEMES, ids=[s[0] for s in SCHEMES])
def test_a_signed_provider_webhook_is_forwarded_signed_and_recorded(system, receiver, provider, secret, sign):
    marker = secrets.token_hex(6)
    raw = json.dumps({"marker": marker, "action": "opened", "nested": {"ü": [1, 2]}}).encode()
    answer = send(system, provider, raw, sign(secret, raw))
    assert answer.status_code == 200 and answer.json() == {"success": True}, answer.text
    [delivery] = receiver.wait_for_match(with_marker(marker))
    assert delivery.body == {"from": provider, "type": "forward", "providerConfigKey": provider,
                             "payload": json.loads(raw)}
    expected = hmac.new(system.dev_key.encode(), delivery.raw, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Nango-Hmac-Sha256"] == expected
    if provider == "github":  # once per backend: the customer's own check, with the SDK
        assert sdk_verdict(system.dev_key, delivery) == {"incoming": True, "legacy": True}
    record = inbound_records(system, provider)[0]  # newest first
    assert record["outcome"] == "success" and record["detail"]["result"] == "forwarded"
    assert record["detail"]["verified"] is True and record["detail"]["outbox_id"]
    assert WEBHOOK_SECRET not in json.dumps(inbound_records(system, provider))


@pytest.mark.parametrize("provider", list(WRONG))
def test_a_wrong_signature_is_refused_recorded_and_not_forwarded(system, receiver, provider):
    marker = secrets.token_hex(6)
    raw = json.dumps({"marker": marker}).encode()
    before = len(inbound_records(system, provider))
    for headers in (WRONG[provider](raw), {}):  # a wrong (or stale) signature, and none at all
        refused = send(system, provider, raw, headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_signature"
    records = inbound_records(system, provider)
    assert len(records) == before + 2
    assert {(r["outcome"], r["error_code"], r["detail"]["result"]) for r in records[:2]} == {
        ("failure", "invalid_signature", "refused_signature")}
    after = json.dumps({"marker": marker + "-after"}).encode()  # queued after the refused ones would be
    secret = {name: key for name, key, _ in SCHEMES}[provider]
    assert send(system, provider, after, SCHEMES_BY_NAME[provider](secret, after)).status_code == 200
    receiver.wait_for_match(with_marker(marker + "-after"))
    assert receiver.matching(with_marker(marker)) == []


def test_the_catalogue_names_the_connection_in_the_payload(system, receiver):
    api = gateway(system)
    imported = api.post("/connections", json={"provider_config_key": "test-hooks", "connection_id": "acct-42",
                                              "credentials": {"type": "OAUTH2", "access_token": "tok-42"}})
    assert imported.status_code == 201, imported.text
    for named, expected in (("acct-42", "acct-42"), ("nobody", None)):
        marker = secrets.token_hex(6)
        raw = json.dumps({"marker": marker, "account": {"connection": named}}).encode()
        assert send(system, "test-hooks", raw, hub(WEBHOOK_SECRET, raw)).status_code == 200
        [delivery] = receiver.wait_for_match(with_marker(marker))
        assert delivery.body.get("connectionId") == expected


def test_unknown_targets_and_bodies_are_refused_in_nangos_shape(system, receiver):
    raw = b'{"a":1}'
    url = inbound_url(system, "github")
    env_uid = url.split("/")[-2]
    for target, code in ((f"/webhook/{'0' * 8}-0000-4000-8000-{'0' * 12}/github", "unknown_environment"),
                         (f"/webhook/{env_uid}/no-such-integration", "unknown_provider_config")):
        answer = requests.post(system.url + target, data=raw, headers={"Content-Type": "application/json"},
                               timeout=10)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == code
    assert send(system, "github", b"<xml/>", hub(WEBHOOK_SECRET, b"<xml/>"), "text/xml").status_code == 415
    form = b"marker=formed&text=hello+there"
    formed = send(system, "github", form, hub(WEBHOOK_SECRET, form), "application/x-www-form-urlencoded")
    assert formed.status_code == 200, formed.text
    [delivery] = receiver.wait_for_match(with_marker("formed"))
    assert delivery.body["payload"] == {"marker": "formed", "text": "hello there"}
    assert requests.get(url, timeout=10).status_code == 401  # only POST is open


def test_without_a_webhook_url_nothing_is_forwarded_and_the_record_says_so(system, receiver):
    set_webhook_url(system, None)
    try:
        raw = json.dumps({"marker": secrets.token_hex(6)}).encode()
        assert send(system, "github", raw, hub(WEBHOOK_SECRET, raw)).status_code == 200
        latest = inbound_records(system, "github")[0]
        assert latest["detail"]["result"] == "no_webhook_url" and "outbox_id" not in latest["detail"]
    finally:
        set_webhook_url(system, receiver.url)


def test_a_forward_survives_a_kill_of_auth(system, receiver):
    port = free_port()
    set_webhook_url(system, hook_url(port))  # nobody listens yet
    late = None
    try:
        kill_auth(system)
        marker = secrets.token_hex(6)
        raw = json.dumps({"marker": marker}).encode()
        assert send(system, "github", raw, hub(WEBHOOK_SECRET, raw)).status_code == 200  # auth is down
        late = receiver_on(port)
        start_auth(system)
        [delivery] = late.wait_for_match(with_marker(marker), timeout=20)
        assert delivery.body["type"] == "forward"
    finally:
        if late is not None:
            late.stop()
        set_webhook_url(system, receiver.url)


def test_the_dashboard_sets_the_webhook_secret_and_shows_the_webhook_url(system, receiver):
    http = requests.Session()
    http.trust_env = False  # the dashboard admits loopback callers when it has no credentials set
    form = http.get(system.url + "/dashboard/dev/integrations/new?q=github&provider=github")
    made = http.post(system.url + "/dashboard/dev/integrations/new", data={
        "provider": "github", "unique_key": "gh-dash-hooks", "client_id": "cid", "client_secret": "csecret",
        "webhook_secret": "dash-webhook-secret", "csrf_token": csrf_token(form.text)})
    assert made.status_code in (200, 303), made.text
    page = http.get(system.url + "/dashboard/dev/integrations/gh-dash-hooks/edit").text
    shown = re.search(r"Webhook URL to paste into the provider's app: <code>([^<]+)</code>", page).group(1)
    assert shown == inbound_url(system, "github").rsplit("/", 1)[0] + "/gh-dash-hooks"
    assert "dash-webhook-secret" not in page and "checked with the saved webhook secret" in page
    raw = json.dumps({"marker": "from-dashboard"}).encode()
    assert requests.post(shown, data=raw, headers={"Content-Type": "application/json",
                                                   **hub("not-it", raw)}, timeout=10).status_code == 401
    signed = requests.post(shown, data=raw, headers={"Content-Type": "application/json",
                                                     **hub("dash-webhook-secret", raw)}, timeout=10)
    assert signed.status_code == 200, signed.text
    assert receiver.wait_for_match(with_marker("from-dashboard"))[0].body["providerConfigKey"] == "gh-dash-hooks"
    logs = http.get(system.url + "/dashboard/dev/logs", params={"integration": "gh-dash-hooks"}).text
    assert logs.count("webhook.inbound") == 2 and ">forwarded<" in logs and ">refused_signature<" in logs


def test_slacks_url_verification_is_answered_with_its_challenge_not_relayed(system, receiver):
    challenge = "chal-" + secrets.token_hex(8)
    raw = json.dumps({"type": "url_verification", "challenge": challenge, "token": "t"}).encode()
    assert send(system, "slack", raw, slack(WEBHOOK_SECRET, raw, 1e9)).status_code == 401  # still signed
    answer = send(system, "slack", raw, slack(WEBHOOK_SECRET, raw))
    assert answer.status_code == 200 and answer.json() == {"challenge": challenge}
    assert inbound_records(system, "slack")[0]["detail"]["result"] == "challenge_answered"
    assert receiver.matching(lambda body: body.get("payload", {}).get("challenge") == challenge) == []


def test_refused_webhooks_past_the_address_limit_are_429_and_stop_writing_records(system, receiver):
    """An open route must not let anyone fill the log: past AUTH_FAILURE_LIMIT refusals a minute
    from one address, a forged webhook is a 429 and leaves no record; a rightly signed one from
    the same address still passes and is forwarded."""
    strict = system.add_gateway(f"gateway-strict-{secrets.token_hex(3)}", AUTH_FAILURE_LIMIT="3")
    target = inbound_url(system, "github").replace(system.url, strict)
    marker = secrets.token_hex(6)
    raw = json.dumps({"marker": marker}).encode()
    before = len(inbound_records(system, "github"))
    statuses = [requests.post(target, data=raw, timeout=10, headers={
        "Content-Type": "application/json", **WRONG["github"](raw)}).status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429], statuses
    assert len(inbound_records(system, "github")) == before + 3  # the three 401s, then no more
    good = json.dumps({"marker": marker + "-good"}).encode()
    answer = requests.post(target, data=good, timeout=10, headers={"Content-Type": "application/json",
                                                                    **hub(WEBHOOK_SECRET, good)})
    assert answer.status_code == 200, answer.text
    receiver.wait_for_match(with_marker(marker + "-good"))
    assert len(inbound_records(system, "github")) == before + 4
    assert receiver.matching(with_marker(marker)) == []
