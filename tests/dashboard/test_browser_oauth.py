"""The operator's first real connection, in Chromium: with a catalogue of 1,200 providers (a
PROVIDERS_FILE) the integration is found by search, created against the test OAuth server, and a
connection is added through the hosted connect page (the OAuth popup runs against that server);
the connection then shows in the dashboard with its token expiry, and in Logs."""

from __future__ import annotations

import pytest

from tests.auth.conftest import CATALOGUE
from tests.dashboard.browser_support import launch
from tests.dashboard.test_browser import PASSWORD, USER, Operator
from tests.support.oauth_server import OAuthServer
from tests.support.system import make_system

GENERATED = 1200


def catalogue(server: OAuthServer) -> str:
    """The auth suites' loopback providers plus 1,200 generated ones, in Nango's providers.yaml format."""
    extra = "".join(f"""
generated-{n:04d}:
    display_name: Generated provider {n:04d}
    auth_mode: API_KEY
    proxy:
        base_url: https://api{n}.example.com
""" for n in range(GENERATED))
    return CATALOGUE.format(url=server.url, port=server.port, url1="http://127.0.0.1:9") + extra


@pytest.fixture(scope="module")
def oauth_server():
    server = OAuthServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory, oauth_server):
    tmp_dir = tmp_path_factory.mktemp("dashboard-oauth")
    (tmp_dir / "providers.yaml").write_text(catalogue(oauth_server))
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", NANGO_DASHBOARD_USERNAME=USER,
                          NANGO_DASHBOARD_PASSWORD=PASSWORD, PROVIDERS_FILE=str(tmp_dir / "providers.yaml"),
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def operator(system):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        tab = Operator(browser, system)
        yield tab
        tab.context.close()
        browser.close()


def test_search_finds_a_provider_among_1200(operator):
    page = operator.open("/dashboard/dev/integrations/new")
    page.get_by_label("Search the provider catalogue").fill("generated provider 1117")
    page.get_by_role("button", name="Search").click()
    assert page.locator("ul.choices a[href$='provider=generated-1117']").count() == 1
    assert page.locator("ul.choices a").count() == 1
    page.get_by_label("Search the provider catalogue").fill("test oauth")
    page.get_by_role("button", name="Search").click()
    assert page.locator("ul.choices a[href$='provider=test-oauth']").count() == 1


def test_an_integration_against_the_oauth_server_and_a_connection_through_the_connect_page(operator, system,
                                                                                            oauth_server):
    client = oauth_server.add_client()
    page = operator.open("/dashboard/dev/integrations/new?q=test+oauth&provider=test-oauth")
    page.get_by_label("Unique key").fill("oauth-dash")
    page.get_by_label("Client id").fill(client.client_id)
    page.get_by_label("Client secret").fill(client.client_secret)
    page.get_by_label("Scopes").fill("read,write")
    assert system.url + "/oauth/callback" in page.content()  # the URL to paste into the provider's app
    page.get_by_role("button", name="Create the integration").click()
    assert page.get_by_role("status").inner_text() == "The integration was created."
    page = operator.open("/dashboard/dev/connections")
    page.get_by_label("End user id", exact=True).fill("oauth-user-1")
    page.get_by_label("Integration").last.select_option("oauth-dash")
    page.get_by_role("button", name="Create a connect link").click()
    with operator.context.expect_page() as opened:
        page.locator("#connect-link").click()
    connect = opened.value
    connect.wait_for_selector("#connect-submit")
    connect.click("#connect-submit")  # the OAuth popup: the test server approves and redirects back
    connect.wait_for_selector("#success-view:not([hidden])", timeout=30_000)
    operator.shot("oauth-connected")
    connect.close()
    page = operator.open("/dashboard/dev/connections")
    page.get_by_label("Search (connection id, end user id or email)").fill("oauth-user-1")
    page.get_by_role("button", name="Search").click()
    page.locator("td[data-label='Connection id'] a").click()
    facts = page.locator("dl.facts").all_inner_texts()
    assert "oauth-user-1" in facts[0] and "OAUTH2" in facts[1] and "does not expire" not in facts[1]
    assert oauth_server.issued_access_tokens()[-1] not in page.content()
    operator.shot("oauth-connection")
    page = operator.open("/dashboard/dev/logs?type=connection.created")
    assert page.locator("td[data-label='Integration']", has_text="oauth-dash").count() == 1
