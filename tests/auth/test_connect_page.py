"""The connect page on its own (`connect_link`), in Debian's Chromium: integrations with logos, a
search box, forms built from the provider's declared fields (titles, hints, patterns, secret
masking), human messages, the success state, themes, languages, and no serious or critical axe-core
violation. Screenshots of each state go to tests/artifacts/connect-page/."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.api.builders import gateway
from tests.auth.conftest import write_catalogue
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.auth.test_connect_ui import CHROMIUM, CHROMIUM_ARGS
from tests.auth.test_oauth_flow import oauth_integration
from tests.support.npm import npm_install
from tests.support.system import make_system

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "connect-page"
DECLARED = """
test-declared:
    display_name: Acme Workspace
    auth_mode: API_KEY
    proxy:
        base_url: {url}
        headers:
            authorization: Bearer ${{apiKey}}
        verification:
            method: GET
            endpoints: [/verify]
    credentials:
        apiKey:
            type: string
            title: Workspace token
            description: Create one under Settings > Tokens.
            pattern: '^tok_[a-z0-9]+$'
            example: tok_abc123
            secret: true
    connection_config:
        subdomain:
            type: string
            title: Workspace subdomain
            description: The part before .acme.example.
            pattern: '^[a-z0-9-]+$'
"""


@pytest.fixture(scope="module")
def page_system(tmp_path_factory, oauth_server):
    tmp_dir = tmp_path_factory.mktemp("connect-page")
    catalogue = Path(write_catalogue(tmp_dir, oauth_server))
    catalogue.write_text(catalogue.read_text() + DECLARED.format(url=oauth_server.url))
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", DEFAULT_PLAN="growth",
                          PROVIDERS_FILE=str(catalogue), OUTBOUND_ALLOW_CIDRS="127.0.0.0/8").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    install = npm_install("axe-core@4.14.1")
    return (install / "node_modules" / "axe-core" / "axe.min.js").read_text()


def new_tab(browser, **options):
    # axe is injected as a script of the page's own: the page's CSP (script-src 'self') would refuse it.
    context = browser.new_context(viewport={"width": 720, "height": 820}, bypass_csp=True, **options)
    return context.new_page()


def shoot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_violations(tab, axe_source: str) -> list[dict]:
    if not tab.evaluate("typeof window.axe !== 'undefined'"):
        tab.add_script_tag(content=axe_source)
    result = tab.evaluate("axe.run(document).then((r) => r.violations.map((v) => "
                          "({id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html)})))")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_the_page_is_framed_by_its_own_origin_only_and_runs_no_inline_script(page_system):
    answer = requests.get(page_system.url + "/connect/", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"})
    csp = answer.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {page_system.url}" in csp and csp.endswith(page_system.url)
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert answer.headers["Content-Language"] == "fr" and '<html lang="fr"' in answer.text
    script = answer.text.split('<script src="')[1].split('"')[0]
    asset = requests.get(page_system.url + script)
    assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert requests.get(page_system.url + "/connect/assets/connect.0000.js").status_code == 404
    assert '<html lang="en"' in requests.get(page_system.url + "/connect/?lang=xx").text


def test_list_search_logos_and_accessibility(page_system, browser, axe_source):
    api = gateway(page_system)
    keys = [make_integration(api, "test-apikey") for _ in range(6)] + [make_integration(api, "test-declared")]
    link = create_session(api, allowed_integrations=keys, end_user={"id": "p1", "display_name": "Grace"})[
        "connect_link"]
    tab = new_tab(browser)
    tab.goto(link)
    tab.wait_for_selector(f"#integration-{keys[-1]}")
    tab.wait_for_function("[...document.images].filter((i) => i.closest('#integrations'))"
                          ".every((i) => i.complete && i.naturalWidth > 0)")
    assert tab.is_visible("#search")
    shoot(tab, "list-light")
    assert serious_violations(tab, axe_source) == []
    tab.fill("#search", "acme")
    assert tab.locator("#integrations li:not([hidden])").count() == 1
    shoot(tab, "search")
    tab.fill("#search", "zzz")
    assert tab.is_visible("#no-match")
    tab.close()


def test_a_form_from_declared_fields_validates_then_connects(page_system, oauth_server, browser, axe_source):
    api = gateway(page_system)
    key = make_integration(api, "test-declared")
    oauth_server.api_keys.add("tok_good42")
    link = create_session(api, allowed_integrations=[key], end_user={"id": "p2"})["connect_link"]
    tab = new_tab(browser)
    tab.goto(link)
    tab.wait_for_selector("#field-apiKey")  # one integration: its form opens at once
    assert tab.inner_text("label[for=field-apiKey]") == "Workspace token"
    assert "Settings > Tokens" in tab.inner_text("#field-apiKey-hint") and "tok_abc123" in tab.inner_text(
        "#field-apiKey-hint")
    assert tab.get_attribute("#field-apiKey", "type") == "password"
    assert tab.get_attribute("#field-subdomain", "type") == "text"
    tab.fill("#field-apiKey", "wrong shape")
    tab.fill("#field-subdomain", "acme")
    tab.keyboard.press("Enter")
    assert tab.inner_text("#field-apiKey-problem") == "This value does not have the expected format."
    assert tab.get_attribute("#field-apiKey", "aria-invalid") == "true"
    assert tab.evaluate("document.activeElement.id") == "field-apiKey"
    shoot(tab, "form-invalid")
    assert serious_violations(tab, axe_source) == []
    tab.click("#field-apiKey + button")  # show the secret
    assert tab.get_attribute("#field-apiKey", "type") == "text"
    tab.fill("#field-apiKey", "tok_wrong1")
    tab.click("#connect-submit")
    tab.wait_for_selector("#alert:not([hidden])")
    assert tab.inner_text("#alert-text") == "Acme Workspace did not accept these credentials. Check them and try again."
    shoot(tab, "form-rejected")
    tab.fill("#field-apiKey", "tok_good42")
    tab.click("#retry")
    tab.wait_for_selector("#success-view:not([hidden])")
    assert tab.inner_text("#success-title") == "Acme Workspace is connected"
    shoot(tab, "success")
    assert serious_violations(tab, axe_source) == []
    [made] = api.get("/connections", params={"endUserId": "p2"}).json()["connections"]
    full = api.get(f"/connections/{made['connection_id']}", params={"provider_config_key": key}).json()
    assert full["connection_config"]["subdomain"] == "acme"
    tab.close()


def test_an_expired_link_says_so_in_the_dark_and_in_french(page_system, browser, axe_source):
    tab = new_tab(browser, color_scheme="dark", locale="fr-FR")
    tab.goto(f"{page_system.url}/connect/?session_token=nango_connect_session_{'d' * 64}")
    tab.wait_for_selector("#alert:not([hidden])")
    assert tab.inner_text("#alert-text").startswith("Ce lien a expiré")
    background = tab.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    assert background == "rgb(24, 27, 33)"  # the system theme follows the dark colour scheme
    shoot(tab, "expired-dark-fr")
    assert serious_violations(tab, axe_source) == []
    tab.close()


def test_a_page_without_a_session_explains_what_to_do(page_system, browser):
    tab = new_tab(browser)
    tab.goto(f"{page_system.url}/connect/")
    tab.wait_for_selector("#alert:not([hidden])")
    assert "without a session" in tab.inner_text("#alert-text")
    tab.close()


def test_client_credentials_and_basic_forms(page_system, oauth_server, browser):
    api = gateway(page_system)
    cc_key, basic_key = make_integration(api, "test-cc"), make_integration(api, "test-basic")
    client = oauth_server.add_client()
    link = create_session(api, allowed_integrations=[cc_key, basic_key], end_user={"id": "p3"})["connect_link"]
    tab = new_tab(browser)
    tab.goto(link)
    tab.click(f"#integration-{cc_key} button")
    assert tab.inner_text("label[for=field-client_id]") == "Client ID"
    assert tab.get_attribute("#field-client_secret", "type") == "password"
    tab.fill("#field-client_id", client.client_id)
    tab.fill("#field-client_secret", client.client_secret)
    tab.click("#connect-submit")
    tab.wait_for_selector("#success-view:not([hidden])")
    tab.click("#done")
    tab.wait_for_selector(f"#integration-{cc_key} .status:text-is('Connected')")
    tab.click(f"#integration-{basic_key} button")
    assert tab.get_attribute("#field-username", "type") == "text"
    assert tab.get_attribute("#field-password", "type") == "password"
    tab.fill("#field-username", "nobody")
    tab.fill("#field-password", "wrong")
    tab.click("#connect-submit")
    tab.wait_for_selector("#alert:not([hidden])")
    assert "did not accept these credentials" in tab.inner_text("#alert-text")
    made = api.get("/connections", params={"endUserId": "p3"}).json()["connections"]
    assert [c["provider_config_key"] for c in made] == [cc_key]
    tab.close()


def test_the_language_comes_from_lang_then_the_browser():
    from services.auth import connect_i18n

    assert connect_i18n.language("fr", "en-US") == "fr"
    assert connect_i18n.language("fr-CA", None) == "fr"
    assert connect_i18n.language("de", "de-DE, fr;q=0.8, en;q=0.5") == "fr"
    assert connect_i18n.language(None, "fr;q=0, en;q=0.5") == "en"
    assert connect_i18n.language(None, None) == "en"
    assert set(connect_i18n.FR) == set(connect_i18n.EN)  # every string translated


def test_a_reconnect_link_replaces_the_credentials_of_its_connection(page_system, oauth_server, browser):
    api = gateway(page_system)
    key = make_integration(api, "test-apikey")
    oauth_server.api_keys.add("renewed-key-1")
    imported = api.post("/connections", json={"provider_config_key": key, "connection_id": "conn-page-re",
                                              "credentials": {"type": "API_KEY", "apiKey": "old-key"}})
    assert imported.status_code == 201, imported.text
    created = api.post("/connect/sessions/reconnect", json={"connection_id": "conn-page-re", "integration_id": key,
                                                            "end_user": {"id": "p4"}})
    tab = new_tab(browser)
    tab.goto(created.json()["data"]["connect_link"])
    tab.wait_for_selector("#field-apiKey")
    assert "existing connection is updated" in tab.inner_text("#intro")
    tab.fill("#field-apiKey", "renewed-key-1")
    tab.click("#connect-submit")
    tab.wait_for_selector("#success-view:not([hidden])")
    full = api.get("/connections/conn-page-re", params={"provider_config_key": key}).json()
    assert full["credentials"]["apiKey"] == "renewed-key-1"
    tab.close()


def test_the_keyboard_alone_connects(page_system, oauth_server, browser):
    api = gateway(page_system)
    keys = [make_integration(api, "test-apikey") for _ in range(2)]
    oauth_server.api_keys.add("keyboard-key-1")
    link = create_session(api, allowed_integrations=keys, end_user={"id": "p5"})["connect_link"]
    tab = new_tab(browser)
    tab.goto(link)
    tab.wait_for_selector(f"#integration-{keys[1]}")
    tab.keyboard.press("Tab")
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.closest('li').id") == f"integration-{keys[1]}"
    tab.keyboard.press("Enter")
    tab.wait_for_selector("#field-apiKey")
    assert tab.evaluate("document.activeElement.id") == "field-apiKey"  # focus moves into the form
    tab.keyboard.type("keyboard-key-1")
    tab.keyboard.press("Enter")
    tab.wait_for_selector("#success-view:not([hidden])")
    assert tab.evaluate("document.activeElement.id") == "success-title"  # announced to screen readers
    tab.keyboard.press("Tab")
    tab.keyboard.press("Enter")  # Done
    tab.wait_for_selector(f"#integration-{keys[1]} .status:text-is('Connected')")
    assert "(Connected)" in tab.get_attribute(f"#integration-{keys[1]} button", "aria-label")
    tab.close()


def test_an_oauth_provider_asks_for_the_values_its_urls_need(page_system, oauth_server, browser):
    api = gateway(page_system)
    key = oauth_integration(api, oauth_server, provider="test-tenant")
    link = create_session(api, allowed_integrations=[key], end_user={"id": "p6"})["connect_link"]
    tab = new_tab(browser)
    tab.goto(link)
    tab.wait_for_selector("#field-tenant")
    tab.click("#connect-submit")
    assert tab.inner_text("#field-tenant-problem") == "Fill in this field."
    tab.fill("#field-tenant", "acme")
    tab.click("#connect-submit")
    tab.wait_for_selector("#success-view:not([hidden])", timeout=30_000)
    [made] = api.get("/connections", params={"endUserId": "p6"}).json()["connections"]
    full = api.get(f"/connections/{made['connection_id']}", params={"provider_config_key": key}).json()
    assert full["connection_config"]["tenant"] == "acme"
    tab.close()
