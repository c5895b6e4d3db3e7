"""`@nangohq/frontend@0.71.10`'s `nango.openConnectUI()` against Authport's connect page, in Debian's
Chromium: a host page on another loopback origin (allowed by CONNECT_UI_ALLOWED_ORIGINS) opens the
page in its iframe, and the SDK's `onEvent` sees `ready`, `settings_changed`, `connect` with the
AuthResult, `error` and `close`. A page on an origin that is not allowed cannot frame it. Screenshots
of each state go to tests/artifacts/connect-ui/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.builders import gateway
from tests.auth.conftest import write_catalogue
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.auth.test_oauth_flow import oauth_integration
from tests.support.npm import npm_install
from tests.support.sdk_page import SdkPage
from tests.support.system import make_system

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "connect-ui"

HOST_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>A customer's app</title></head><body>
<h1>A customer's app</h1><p>Some page behind the Connect UI.</p>
<script type="module">
import Nango from '/sdk/index.js';
window.events = [];
window.openUI = (o) => {
  const nango = new Nango({ host: o.apiURL, connectSessionToken: o.sessionToken });
  window.ui = nango.openConnectUI({ baseURL: o.baseURL, apiURL: o.apiURL, sessionToken: o.sessionToken,
    lang: o.lang, themeOverride: o.theme, detectClosedAuthWindow: o.detect,
    onEvent: (event) => { window.events.push(event); } });
};
window.ready = true;
</script></body></html>
"""


@pytest.fixture(scope="module")
def frontend():
    return npm_install("@nangohq/frontend@0.71.10")


@pytest.fixture(scope="module")
def host_page(frontend):
    server = SdkPage(frontend, host="127.0.0.2", page=HOST_PAGE).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stranger_page(frontend):
    """A page on an origin the server does not allow."""
    server = SdkPage(frontend, host="127.0.0.3", page=HOST_PAGE).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ui_system(tmp_path_factory, oauth_server, host_page):
    tmp_dir = tmp_path_factory.mktemp("connect-ui")
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", DEFAULT_PLAN="growth",
                          PROVIDERS_FILE=write_catalogue(tmp_dir, oauth_server), OUTBOUND_ALLOW_CIDRS="127.0.0.0/8",
                          CONNECT_UI_ALLOWED_ORIGINS=host_page.origin).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed (scripts/system-deps.sh installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 900, "height": 760})
    page = context.new_page()
    yield page
    context.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_ui(tab, host, system, token: str | None, **options):
    tab.goto(host.url)
    tab.wait_for_function("window.ready === true")
    tab.evaluate("(o) => window.openUI(o)", {"baseURL": f"{system.url}/connect", "apiURL": system.url,
                                             "sessionToken": token, **options})
    return tab.frame_locator("#connect-ui")


def events(tab, kind: str | None = None) -> list[dict]:
    found = tab.evaluate("window.events")
    return [e for e in found if kind is None or e["type"] == kind]


def wait_event(tab, kind: str, count: int = 1, timeout: float = 30) -> dict:
    tab.wait_for_function(f"window.events.filter((e) => e.type === '{kind}').length >= {count}",
                          timeout=timeout * 1000)
    return events(tab, kind)[count - 1]


def test_oauth_through_open_connect_ui(ui_system, oauth_server, host_page, tab):
    api = gateway(ui_system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api, allowed_integrations=[key], end_user={"id": "ui-user", "display_name": "Ada"})["token"]
    frame = open_ui(tab, host_page, ui_system, token, detect=True)
    wait_event(tab, "ready")
    src = tab.get_attribute("#connect-ui", "src")
    assert src.startswith(f"{ui_system.url}/connect/?apiURL=") and "detectClosedAuthWindow=true" in src
    settings = wait_event(tab, "settings_changed")
    assert settings["payload"]["defaultTheme"] == "system" and settings["payload"]["showWatermark"] is False
    frame.locator("#connect-submit").wait_for()
    shoot(tab, "oauth-detail")
    frame.locator("#connect-submit").click()
    connect = wait_event(tab, "connect")
    payload = connect["payload"]
    assert payload["providerConfigKey"] == key and payload["isPending"] is False
    made = api.get(f"/connections/{payload['connectionId']}", params={"provider_config_key": key})
    assert made.status_code == 200 and made.json()["end_user"]["id"] == "ui-user"
    frame.locator("#success-view:not([hidden])").wait_for()
    shoot(tab, "success")
    frame.locator("#done").click()
    wait_event(tab, "close")
    tab.wait_for_function("document.getElementById('connect-ui') === null")
    assert [e["type"] for e in events(tab)] == ["ready", "settings_changed", "connect", "close"]


def test_api_key_with_a_token_set_later_a_wrong_key_then_the_right_one(ui_system, oauth_server, host_page, tab):
    api = gateway(ui_system)
    key = make_integration(api, "test-apikey")
    oauth_server.api_keys.add("ui-key-123")
    token = create_session(api, allowed_integrations=[key])["token"]
    frame = open_ui(tab, host_page, ui_system, None, lang="fr", theme="dark")
    wait_event(tab, "ready")
    tab.evaluate("(t) => window.ui.setSessionToken(t)", token)
    frame.locator("#field-apiKey").wait_for()
    assert frame.locator("html").get_attribute("lang") == "fr"
    assert frame.locator("html").get_attribute("data-theme") == "dark"
    assert wait_event(tab, "settings_changed")["payload"]["defaultTheme"] == "dark"
    frame.locator("#connect-submit").click()  # empty: refused by the form, nothing sent
    assert frame.locator("#field-apiKey-problem").inner_text() == "Remplissez ce champ."
    frame.locator("#field-apiKey").fill("not-the-key")
    frame.locator("#connect-submit").click()
    error = wait_event(tab, "error")
    assert error["payload"]["errorType"] == "connection_test_failed"
    alert = frame.locator("#alert")
    assert "identifiants" in alert.inner_text() and error["payload"]["errorMessage"] in alert.inner_text()
    shoot(tab, "api-key-error-fr-dark")
    frame.locator("#field-apiKey").fill("ui-key-123")
    frame.locator("#retry").click()
    connect = wait_event(tab, "connect")
    assert connect["payload"]["providerConfigKey"] == key and connect["payload"]["connectionId"]


def test_a_denied_consent_posts_an_error_with_a_human_message(ui_system, oauth_server, host_page, tab):
    api = gateway(ui_system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api, allowed_integrations=[key], integrations_config_defaults={
        key: {"authorization_params": {"deny": "1"}}})["token"]
    frame = open_ui(tab, host_page, ui_system, token)
    frame.locator("#connect-submit").click()
    error = wait_event(tab, "error")
    assert error["payload"]["errorType"] == "unknown_error"
    assert error["payload"]["errorMessage"].startswith("Access was not granted")
    assert "_" not in frame.locator("#alert").inner_text()  # no internal code shown to a person
    shoot(tab, "oauth-denied")
    assert not events(tab, "connect")


def test_escape_closes_the_ui(ui_system, oauth_server, host_page, tab):
    api = gateway(ui_system)
    keys = [make_integration(api, "test-apikey") for _ in range(7)]
    token = create_session(api, allowed_integrations=keys)["token"]
    frame = open_ui(tab, host_page, ui_system, token)
    frame.locator(f"#integration-{keys[0]}").wait_for()
    assert frame.locator("#search").is_visible()
    frame.locator("#search").fill(keys[3])
    assert frame.locator(".integrations li:not([hidden])").count() == 1
    frame.locator("#search").fill("no such app at all")
    assert frame.locator("#no-match").is_visible()
    frame.locator("#search").press("Escape")
    wait_event(tab, "close")


def test_an_origin_that_is_not_allowed_cannot_frame_the_page(ui_system, oauth_server, stranger_page, tab):
    api = gateway(ui_system)
    key = make_integration(api, "test-apikey")
    token = create_session(api, allowed_integrations=[key])["token"]
    open_ui(tab, stranger_page, ui_system, token)
    tab.wait_for_selector("#connect-ui")
    tab.wait_for_timeout(2500)
    assert events(tab) == []  # the page never ran: no ready, no token handed over
    frame = tab.frame(url=lambda url: "/connect/" in url)
    assert frame is None or frame.locator("#app").count() == 0


def test_a_sign_in_window_closed_early_is_an_error_with_detect_closed_auth_window(ui_system, oauth_server, host_page,
                                                                                  tab):
    api = gateway(ui_system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api, allowed_integrations=[key])["token"]
    frame = open_ui(tab, host_page, ui_system, token, detect=True)
    frame.locator("#connect-submit").wait_for()
    # Hold the provider's answer back, as a person reading the consent screen would: the window is
    # closed before the flow can end.
    tab.context.route("**/authorize*", lambda route: None)
    with tab.context.expect_page() as opened:
        frame.locator("#connect-submit").click()
    opened.value.close()
    error = wait_event(tab, "error")
    assert error["payload"]["errorType"] == "window_closed"
    assert "closed" in frame.locator("#alert").inner_text()
    assert not events(tab, "connect")
