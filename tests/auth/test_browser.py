"""The whole popup flow in a real browser: Debian's Chromium, driven by Playwright, runs
`nango.auth()` of `@nangohq/frontend@0.71.10` on a test page, with a connect session created by
`@nangohq/node@0.71.10`, against the test OAuth server; `getToken()` then returns its token.
Failures reach the SDK as their documented error types, and no token reaches a log."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.builders import gateway
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.auth.test_oauth_flow import oauth_integration
from tests.support.databases import raw_rows
from tests.support.npm import npm_install
from tests.support.sdk_page import SdkPage

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DRIVER = Path(__file__).resolve().parents[1] / "e2e" / "sdk_driver.mjs"


@pytest.fixture(scope="module")
def page_server():
    server = SdkPage(npm_install("@nangohq/frontend@0.71.10")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed (scripts/system-deps.sh installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, page_server):
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(page_server.url)
    tab.wait_for_function("window.ready === true")
    yield tab
    context.close()


def node_sdk(system, *steps: dict) -> list:
    """Run calls of @nangohq/node against the gateway; what each returned."""
    plan = {"host": system.url, "keys": {"dev": system.dev_key}, "steps": list(steps)}
    proc = subprocess.run([shutil.which("node"), str(DRIVER), str(npm_install("@nangohq/node@0.71.10"))],
                          input=json.dumps(plan), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all("threw" not in r for r in results), results
    return [r["returned"] for r in results]


def connect_session(system, key: str, user: str = "browser-user") -> str:
    [created] = node_sdk(system, {"call": "createConnectSession", "args": [
        {"end_user": {"id": user, "email": f"{user}@example.com"}, "allowed_integrations": [key]}]})
    return created["data"]["token"]


def run_auth(page, system, token: str, key: str, options: dict | None = None, wait: float = 30) -> dict:
    page.evaluate("([h, t, k, o]) => window.startAuth(h, t, k, o)", [system.url, token, key, options or {}])
    page.wait_for_function("window.outcome !== null", timeout=wait * 1000)
    return page.evaluate("window.outcome")


def test_auth_resolves_and_get_token_returns_the_servers_token(system, oauth_server, page):
    key = oauth_integration(gateway(system), oauth_server)
    token = connect_session(system, key)
    outcome = run_auth(page, system, token, key)
    assert "ok" in outcome, outcome
    connection_id = outcome["ok"]["connectionId"]
    assert outcome["ok"]["providerConfigKey"] == key and outcome["ok"]["isPending"] is False
    [access_token] = node_sdk(system, {"call": "getToken", "args": [key, connection_id]})
    assert access_token in oauth_server.issued_access_tokens()
    assert {"type": "nango_oauth_callback_success"} in page.evaluate("window.messages")


def test_denied_consent_rejects_with_callback_err(system, oauth_server, page):
    key = oauth_integration(gateway(system), oauth_server)
    outcome = run_auth(page, system, connect_session(system, key), key,
                       {"authorization_params": {"deny": "1"}})
    assert outcome["error"]["type"] == "callback_err", outcome
    assert "access_denied" in outcome["error"]["message"]


def test_unknown_integration_rejects_with_provider_config_err(system, oauth_server, page):
    key = oauth_integration(gateway(system), oauth_server)
    outcome = run_auth(page, system, connect_session(system, key), "no-such-integration")
    assert outcome["error"]["type"] == "provider_config_err", outcome


def test_expired_session_rejects_with_unknown_session(system, oauth_server, page):
    key = oauth_integration(gateway(system), oauth_server)
    token = connect_session(system, key, user="late-user")
    raw_rows(system.database_url, "UPDATE connect_sessions SET expires_at = created_at WHERE end_user LIKE "
                                  "'%late-user%'")
    outcome = run_auth(page, system, token, key)
    assert outcome["error"]["type"] == "unknown_connect_session_token", outcome


def test_bad_state_is_reported_by_the_popup_page(system, oauth_server, page):
    key = oauth_integration(gateway(system), oauth_server)
    page.evaluate("([h, t, k, o]) => window.startAuth(h, t, k, o)",
                  [system.url, connect_session(system, key), key, {"authorization_params": {"tamper_state": "1"}}])
    page.wait_for_function("window.messages.some((m) => m && m.type === 'nango_oauth_callback_error')",
                           timeout=30_000)
    [message] = [m for m in page.evaluate("window.messages") if m.get("type") == "nango_oauth_callback_error"]
    assert message["payload"]["errorType"] == "state_err"


def test_connect_link_page_lets_the_end_user_connect(system, oauth_server, browser):
    api = gateway(system)
    oauth_key = oauth_integration(api, oauth_server)
    key_key = make_integration(api, "test-apikey")
    oauth_server.api_keys.add("page-key-123")
    link = create_session(api, allowed_integrations=[oauth_key, key_key],
                          end_user={"id": "page-user", "display_name": "Page User"})["connect_link"]
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(link)
    tab.wait_for_selector(f"#integration-{oauth_key} button")
    assert "Page User" in tab.inner_text("#intro")
    tab.click(f"#integration-{oauth_key} button")
    tab.click("#connect-submit")
    tab.wait_for_selector("#success-view:not([hidden])", timeout=30_000)
    tab.click("#done")
    tab.wait_for_selector(f"#integration-{oauth_key} .status:text-is('Connected')")
    tab.click(f"#integration-{key_key} button")
    tab.fill("#field-apiKey", "page-key-123")
    tab.click("#connect-submit")
    tab.wait_for_selector("#success-view:not([hidden])", timeout=30_000)
    context.close()
    made = api.get("/connections", params={"endUserId": "page-user"}).json()["connections"]
    assert sorted(c["provider_config_key"] for c in made) == sorted([oauth_key, key_key])
    expired = browser.new_page()
    expired.goto(f"{system.url}/connect/?session_token=nango_connect_session_{'c' * 64}")
    expired.wait_for_selector("#alert:not([hidden])")
    assert "expired" in expired.inner_text("#alert") and "_" not in expired.inner_text("#alert")
    expired.close()


def test_no_token_or_secret_reaches_a_log(system, oauth_server):
    time.sleep(0.5)  # let the processes flush what they log
    logs = "\n".join(p.read_text(errors="replace") for p in system.log_dir.glob("*.log"))
    secrets = oauth_server.issued_access_tokens() + oauth_server.issued_refresh_tokens() + oauth_server.issued_codes
    secrets += [client.client_secret for client in oauth_server.clients.values()]
    assert secrets, "the flows above issued no token"
    leaked = [s for s in secrets if s in logs]
    assert not leaked, f"{len(leaked)} secrets found in the logs"
    assert "canary-" not in logs
