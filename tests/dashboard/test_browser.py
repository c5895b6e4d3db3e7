"""The dashboard driven in Debian's Chromium as an operator drives it: sign in with Basic
credentials, create an integration from the catalogue, create and rotate a secret key (the old one
refused by the API at once), delete, restore and purge a connection imported through the API, and
find each of those in Logs. A canary secret never reaches a page. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.api.builders import connection_body, oauth2_tokens
from tests.dashboard.browser_support import artifacts_dir, launch
from tests.support.databases import raw_rows
from tests.support.npm import npm_install
from tests.support.system import make_system

USER, PASSWORD = "operator", "browser-test-password"
CANARY = "canary-secret-4f1d9c2e"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """SQLite only: the pages are the same on both backends (tests/dashboard/test_access.py runs both)."""
    tmp_dir = tmp_path_factory.mktemp("dashboard-browser")
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", NANGO_DASHBOARD_USERNAME=USER,
                          NANGO_DASHBOARD_PASSWORD=PASSWORD).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


class Operator:
    """One signed-in browser tab; remembers every page's HTML to look for the canary."""

    def __init__(self, browser, system, **context):
        self.system = system
        self.context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD},
                                           viewport={"width": 1280, "height": 800}, **context)
        self.page = self.context.new_page()
        self.seen: list[str] = []
        self.page.on("response", self._keep)

    def _keep(self, response):
        if "text/html" in (response.headers.get("content-type") or ""):
            try:
                self.seen.append(response.url + "\n" + response.text())
            except Exception:  # noqa: BLE001 - a redirect has no body to keep
                self.seen.append(response.url)

    def open(self, path: str):
        self.page.goto(self.system.url + path)
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(artifacts_dir() / f"dashboard-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def operator(chromium, system):
    tab = Operator(chromium, system)
    yield tab
    tab.context.close()


def test_an_operator_creates_an_integration_from_the_catalogue(operator, system):
    page = operator.open("/dashboard")
    assert page.url.endswith("/dashboard/dev/integrations")
    assert page.get_by_text("No integration in dev yet").is_visible()
    operator.shot("integrations-empty")
    page.get_by_role("link", name="Add an integration").click()
    page.get_by_label("Search the provider catalogue").fill("github")
    page.get_by_role("button", name="Search").click()
    page.locator("ul.choices a[href$='provider=github']").click()
    page.get_by_label("Unique key").fill("gh-dash")
    page.get_by_label("Client id").fill("dash-client")
    page.get_by_label("Client secret").fill(CANARY)
    page.get_by_label("Scopes").fill("repo,user")
    operator.shot("integration-new")
    page.get_by_role("button", name="Create the integration").click()
    assert page.get_by_role("status").inner_text() == "The integration was created."
    assert page.locator("td code", has_text="gh-dash").is_visible()
    operator.shot("integrations")
    listed = system.session().get(system.url + "/integrations").json()["data"]
    assert [i["unique_key"] for i in listed] == ["gh-dash"]
    assert raw_rows(system.database_url, "SELECT actor FROM operations WHERE kind = 'integration.created'") == \
        [(f"dashboard:{USER}",)]
    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Client id").input_value() == "dash-client"
    assert CANARY not in page.content()
    page.get_by_label("Display name").fill("GitHub (dashboard)")
    page.get_by_label("Scopes").fill("not a scope list!")
    page.get_by_label("New client secret (leave empty to keep the current app credentials)").fill("x")
    page.get_by_role("button", name="Save").click()
    assert "scopes" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Display name").input_value() == "GitHub (dashboard)"  # the form is kept
    assert raw_rows(system.database_url, "SELECT display_name FROM integrations") == [(None,)]
    page.get_by_label("Scopes").fill("repo")
    page.get_by_label("New client secret (leave empty to keep the current app credentials)").fill("")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "The integration was saved."
    assert page.get_by_role("cell", name="GitHub (dashboard)").is_visible()


def test_a_new_secret_key_is_shown_once_and_rotating_it_refuses_the_old_one_at_once(operator, system):
    page = operator.open("/dashboard/dev/settings")
    operator.shot("settings")
    page.get_by_label("New secret key name").fill("ops")
    page.get_by_role("button", name="Create a secret key").click()
    first = page.locator("#new-key-value").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert system.session(first).get(system.url + "/integrations").status_code == 200
    page.get_by_role("button", name="Rotate ops").click()
    second = page.locator("#new-key-value").inner_text()
    operator.shot("settings-key-shown-once")
    assert second != first
    assert system.session(first).get(system.url + "/integrations").status_code == 401
    assert system.session(second).get(system.url + "/integrations").status_code == 200
    page.reload()  # the form sent again: the key it was shown with is gone, so nothing rotates
    assert "nothing was done" in page.get_by_role("alert").inner_text()
    assert system.session(second).get(system.url + "/integrations").status_code == 200
    page.get_by_role("link", name="Environment settings").click()  # the page again: the value is gone
    assert page.locator("#new-key-value").count() == 0 and second not in page.content()
    page.get_by_role("button", name="Revoke ops").click()
    assert "revoked" in page.get_by_role("status").inner_text()
    assert system.session(second).get(system.url + "/integrations").status_code == 401


def test_the_webhook_signing_key_rotates_once_confirmed_and_is_shown_once(operator, system):
    query = "SELECT webhook_signing_key_enc FROM environments WHERE name = 'dev'"
    before = raw_rows(system.database_url, query)
    page = operator.open("/dashboard/dev/settings")
    page.get_by_label("Type rotate to confirm").fill("yes")
    page.get_by_role("button", name="Rotate the webhook signing key").click()
    assert "Type rotate to confirm" in page.get_by_role("alert").inner_text()
    assert raw_rows(system.database_url, query) == before
    page.get_by_label("Type rotate to confirm").fill("rotate")
    page.get_by_role("button", name="Rotate the webhook signing key").click()
    shown = page.locator("#new-key-value").inner_text()
    assert len(shown) >= 32 and raw_rows(system.database_url, query) != before
    operator.shot("settings-signing-key-shown-once")
    page = operator.open("/dashboard/dev/settings")
    assert shown not in page.content()
    records = system.session().get(system.url + "/logs", params={"limit": 5}).json()["data"]
    assert any(r["actor"] == f"dashboard:{USER}" and r["type"] == "key.rotated"
               and r["detail"]["kind"] == "webhook_signing" for r in records), records


def test_delete_restore_and_purge_a_connection(operator, system):
    body = connection_body("gh-dash", connection_id="conn-dash-1", credentials=oauth2_tokens(access_token=CANARY),
                           end_user={"id": "user-7", "email": "user7@example.com"})
    assert system.session().post(system.url + "/connections", json=body).status_code == 201
    page = operator.open("/dashboard/dev/connections")
    operator.shot("connections")
    page.get_by_label("Search (connection id, end user id or email)").fill("user7@")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="conn-dash-1").click()
    assert page.locator("dd", has_text="user-7 · user7@example.com").is_visible()
    operator.shot("connection")
    page.get_by_label("Type conn-dash-1 to confirm").first.fill("conn-dash-1")
    page.get_by_role("button", name="Delete the connection").click()
    assert "can be restored" in page.get_by_role("status").inner_text()
    assert system.session().get(system.url + "/connections/conn-dash-1?provider_config_key=gh-dash").status_code \
        in (400, 404)
    page.get_by_label("Show").select_option("deleted")
    page.get_by_role("button", name="Search").click()
    assert "state=deleted" in page.url and page.get_by_role("heading", name="Recently deleted").is_visible()
    operator.shot("connections-deleted")
    page.get_by_role("link", name="conn-dash-1").click()
    operator.shot("connection-deleted")
    page.locator("#confirm-restore").fill("conn-dash-1")
    page.get_by_role("button", name="Restore the connection").click()
    assert page.get_by_role("status").inner_text() == "The connection was restored."
    assert system.session().get(system.url + "/connections/conn-dash-1?provider_config_key=gh-dash").status_code \
        == 200
    operator.open("/dashboard/dev/connections/gh-dash/conn-dash-1")
    page.locator("#confirm-purge").fill("wrong id")
    page.get_by_role("button", name="Purge the connection").click()
    assert "Type the connection id" in page.get_by_role("alert").inner_text()
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM connections WHERE connection_id = 'conn-dash-1'") \
        == [(1,)]
    page.locator("#confirm-purge").fill("conn-dash-1")
    page.get_by_role("button", name="Purge the connection").click()
    assert page.get_by_role("status").inner_text() == "The connection was purged for good."
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM connections WHERE connection_id = 'conn-dash-1'") \
        == [(0,)]


def test_health_filters_and_the_credential_state_of_a_connection(operator, system):
    """A refresh that really fails (github.com cannot be reached from here) marks the connection
    'refresh failing': the filters tell it from a healthy one, its page shows why."""
    api = system.session()
    for connection_id, expires_at in (("conn-healthy", "2099-01-01T00:00:00.000Z"),
                                      ("conn-failing", "2020-01-01T00:00:00.000Z")):
        body = connection_body("gh-dash", connection_id=connection_id, connection_config={"team": "blue"},
                               credentials=oauth2_tokens(access_token=CANARY, expires_at=expires_at))
        assert api.post(system.url + "/connections", json=body).status_code == 201
    read = api.get(system.url + "/connections/conn-failing", params={"provider_config_key": "gh-dash"})
    assert read.status_code in (400, 424) and read.json()["error"]["code"] == "invalid_credentials", read.text
    listed = "td[data-label='Connection id'] a"
    page = operator.open("/dashboard/dev/connections")
    page.get_by_label("Show").select_option("failing")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**state=failing**")
    page.locator(listed).first.wait_for()
    assert page.locator(listed).all_inner_texts() == ["conn-failing"]
    operator.shot("connections-failing")
    page.get_by_label("Show").select_option("healthy")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**state=healthy**")  # the list is read once the new page is there
    page.locator(listed).first.wait_for()
    healthy = page.locator(listed).all_inner_texts()
    assert "conn-healthy" in healthy and "conn-failing" not in healthy
    page = operator.open("/dashboard/dev/connections/gh-dash/conn-failing")
    facts = page.locator("dl.facts").all_inner_texts()
    assert "2020-01-01T00:00:00.000Z" in facts[1] and "refresh failing" in facts[1] and "never refreshed" in facts[1]
    assert '{"team": "blue"}' in facts[0] or '{"team":"blue"}' in facts[0]
    assert page.get_by_role("heading", name="Refresh errors").is_visible()
    operator.shot("connection-failing")
    page = operator.open("/dashboard/dev/connections/gh-dash/conn-healthy")
    facts = page.locator("dl.facts").all_inner_texts()
    assert "2099-01-01T00:00:00.000Z" in facts[1] and "healthy" in facts[1]
    assert not page.get_by_role("heading", name="Refresh errors").count()


def test_the_usage_page_charts_the_requests_against_the_plan_limit(operator, system):
    api = system.session()
    for _ in range(5):
        assert api.get(system.url + "/connections").status_code == 200
    page = operator.open("/dashboard/dev/usage")
    for _ in range(40):  # the gateway sends its counts every 5 s
        if page.locator("svg rect.admitted").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("svg rect.admitted").count() >= 1
    assert page.get_by_role("img", name="Requests per minute, last hour").is_visible()
    assert page.locator("text.limit-label").text_content() == "limit 200/min"
    assert page.get_by_role("heading", name="Minutes with requests").is_visible()
    operator.shot("usage")


def test_a_connect_link_for_an_end_user_is_shown_once_and_opens_the_connect_page(operator, system):
    page = operator.open("/dashboard/dev/connections")
    page.get_by_label("End user id", exact=True).fill("end-user-42")
    page.get_by_label("End user email (optional)").fill("42@example.com")
    page.get_by_label("Integration").last.select_option("gh-dash")
    page.get_by_role("button", name="Create a connect link").click()
    link = page.locator("#connect-link").get_attribute("href")
    assert link.startswith(system.url + "/connect/?session_token=nango_connect_session_")
    assert "session_token" not in page.url
    operator.shot("connections-connect-link")
    token = link.split("session_token=")[1]
    session = system.session(token).get(system.url + "/connect/session")
    assert session.status_code == 200 and session.json()["data"]["endUser"]["id"] == "end-user-42"
    assert session.json()["data"]["allowed_integrations"] == ["gh-dash"]
    operator.open("/dashboard/dev/connections")
    assert page.locator("#connect-link").count() == 0


def test_each_action_is_in_logs_under_the_dashboard_actor(operator):
    page = operator.open("/dashboard/dev/logs")
    operator.shot("logs")
    rows = page.locator("tbody tr").all_inner_texts()
    for kind in ("integration.created", "key.created", "key.rotated", "key.revoked", "connection.deleted",
                 "connection.restored", "connection.purged", "dashboard.sign_in"):
        assert any(kind in row and f"dashboard:{USER}" in row for row in rows), kind
    page.get_by_label("Type").fill("connection.purged")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "conn-dash-1" in rows[0]
    page.locator("tbody tr a").first.click()
    assert page.get_by_role("heading", name=re.compile("Log record")).is_visible()
    assert page.locator("dd", has_text=f"dashboard:{USER}").is_visible()
    operator.shot("log-record")
    operator.open("/dashboard/dev/logs")
    assert page.get_by_label("Refresh every 10 seconds").is_visible()  # shown by the script


def test_a_variable_value_is_hidden_until_revealed_and_the_reveal_is_recorded(operator, system):
    value = "var-value-7c3e"
    page = operator.open("/dashboard/dev/settings")
    page.get_by_label("Variable name").fill("bad name")
    page.get_by_role("button", name="Set the variable").click()
    assert "letters, digits and underscores" in page.get_by_role("alert").inner_text()
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM environment_variables") == [(0,)]
    page.get_by_label("Variable name").fill("API_TOKEN")
    page.get_by_label("Value (hidden once saved)").fill(value)
    page.get_by_role("button", name="Set the variable").click()
    assert page.get_by_role("status").inner_text() == "The variable was saved."
    assert value not in page.content() and "API_TOKEN" in page.content()
    page.get_by_role("button", name="Reveal API_TOKEN").click()
    assert page.locator("code.value", has_text=value).is_visible()
    operator.shot("settings-variable-revealed")
    assert value not in page.url
    rows = raw_rows(system.database_url,
                    "SELECT actor, detail FROM operations WHERE kind = 'dashboard.secret_revealed'")
    assert len(rows) == 1 and rows[0][0] == f"dashboard:{USER}" and "env_var:API_TOKEN" in rows[0][1]
    page.get_by_role("button", name="Delete API_TOKEN").click()
    assert page.get_by_role("status").inner_text() == "The variable was deleted."
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM environment_variables") == [(0,)]
    shown = [seen.split("\n")[0] for seen in operator.seen if value in seen]
    assert len(shown) == 1 and shown[0].endswith("/settings/variables/API_TOKEN/reveal")


def test_the_canary_secret_never_reaches_a_page(operator, system):
    for path in ("/dashboard/dev/integrations", "/dashboard/dev/connections", "/dashboard/dev/settings",
                 "/dashboard/dev/logs", "/dashboard/prod/integrations", "/dashboard/dev/integrations/gh-dash/edit",
                 "/dashboard/dev/integrations/gh-dash/delete"):
        operator.open(path)
    assert len(operator.seen) > 10
    assert not [page.split("\n")[0] for page in operator.seen if CANARY in page]
    assert CANARY not in system.logs()


def test_core_actions_work_with_javascript_off(chromium, system):
    tab = Operator(chromium, system, java_script_enabled=False)
    try:
        page = tab.open("/dashboard/dev/logs")
        assert not page.get_by_label("Refresh every 10 seconds").is_visible()  # only with scripts
        page.get_by_label("Environment").select_option("prod")
        page.get_by_role("button", name="Switch").click()
        assert page.url.endswith("/dashboard/prod/logs")
        tab.open("/dashboard/prod/settings")
        page.get_by_label("New secret key name").fill("nojs")
        page.get_by_role("button", name="Create a secret key").click()
        assert page.locator("#new-key-value").is_visible()
    finally:
        tab.context.close()


def test_phone_width_screenshots(chromium, system):
    tab = Operator(chromium, system)
    try:
        tab.page.set_viewport_size({"width": 390, "height": 844})
        for name in ("integrations", "connections", "settings", "logs", "usage"):
            tab.open(f"/dashboard/dev/{name}")
            tab.shot(f"phone-{name}")
    finally:
        tab.context.close()


def test_axe_finds_no_serious_or_critical_violation_on_any_page(chromium, system):
    """axe-core from npm at test time, injected into each page (bypassing the page's own CSP,
    which rightly refuses any script that is not the dashboard's)."""
    axe = npm_install("axe-core@4.10.2") / "node_modules" / "axe-core" / "axe.min.js"
    tab = Operator(chromium, system, bypass_csp=True)
    found = {}
    try:
        for path in ("/dashboard/dev/integrations", "/dashboard/dev/integrations/new?q=git",
                     "/dashboard/dev/integrations/new?q=github&provider=github",
                     "/dashboard/dev/integrations/gh-dash/delete", "/dashboard/dev/integrations/gh-dash/edit",
                     "/dashboard/dev/connections", "/dashboard/dev/connections?state=deleted",
                     "/dashboard/dev/connections?state=failing", "/dashboard/dev/connections/gh-dash/conn-failing",
                     "/dashboard/dev/usage",
                     "/dashboard/dev/logs/1",
                     "/dashboard/dev/settings", "/dashboard/dev/logs", "/dashboard/nope/logs"):
            page = tab.open(path)
            page.add_script_tag(path=str(axe))
            result = page.evaluate("axe.run(document).then(r => ({violations: r.violations, passes: r.passes.length}))")
            assert result["passes"] > 10, path  # axe ran and checked this page
            violations = result["violations"]
            bad = [(v["id"], v["impact"], len(v["nodes"])) for v in violations
                   if v["impact"] in ("serious", "critical")]
            if bad:
                found[path] = bad
    finally:
        tab.context.close()
    assert found == {}
