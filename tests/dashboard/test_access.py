"""Who may open the dashboard, through the real gateway: Basic credentials when they are set
(wrong ones limited per address, the right ones never locked out), loopback only when they are
not; CSRF tokens on forms; the security headers; the gateway's other routes untouched."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.databases import raw_rows

USER, PASSWORD = "operator", "test-dashboard-password"


@pytest.fixture(scope="module")
def system_env():
    return {"NANGO_DASHBOARD_USERNAME": USER, "NANGO_DASHBOARD_PASSWORD": PASSWORD, "TRUSTED_PROXIES": "1"}


def browser(auth=(USER, PASSWORD), forwarded_for: str | None = None) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.auth = auth
    if forwarded_for:
        http.headers["X-Forwarded-For"] = forwarded_for
    return http


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_pages_need_basic_credentials(system):
    answer = browser(auth=None).get(system.url + "/dashboard/dev/integrations")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert "Sign in" in answer.text and "text/html" in answer.headers["Content-Type"]


def test_wrong_credentials_are_refused_and_recorded(system):
    answer = browser(auth=(USER, "wrong")).get(system.url + "/dashboard/dev/integrations",
                                               headers={"X-Forwarded-For": "198.51.100.7"})
    assert answer.status_code == 401
    assert "wrong" in answer.text
    rows = raw_rows(system.database_url, "SELECT actor, success FROM operations WHERE kind = 'dashboard.sign_in'")
    assert (f"dashboard:{USER}", False) in [(a, bool(s)) for a, s in rows]


def test_failed_attempts_are_limited_per_address_but_never_lock_out_the_right_credentials(system):
    guesser = browser(auth=(USER, "guess"), forwarded_for="198.51.100.9")
    statuses = [guesser.get(system.url + "/dashboard/dev/integrations").status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429
    right = browser(forwarded_for="198.51.100.9").get(system.url + "/dashboard/dev/integrations")
    assert right.status_code == 200
    other = browser(auth=(USER, "guess"), forwarded_for="198.51.100.10").get(system.url + "/dashboard/dev/logs")
    assert other.status_code == 401  # another address has its own count


def test_pages_send_the_security_headers_and_a_strict_cookie(system):
    answer = browser().get(system.url + "/dashboard/dev/settings")
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in answer.headers
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text


def test_a_form_without_its_csrf_token_changes_nothing(system):
    http = browser()
    page = http.get(system.url + "/dashboard/dev/settings")
    assert page.status_code == 200
    before = raw_rows(system.database_url, "SELECT COUNT(*) FROM api_keys")
    refused = http.post(system.url + "/dashboard/dev/settings/keys", data={"name": "sneaky"})
    assert refused.status_code == 403 and "security token" in refused.text
    forged = http.post(system.url + "/dashboard/dev/settings/keys", data={"name": "sneaky", "csrf_token": "0" * 64})
    assert forged.status_code == 403
    other = browser()  # another session's token is no good with this cookie
    other.get(system.url + "/dashboard/dev/settings")
    stolen = http.post(system.url + "/dashboard/dev/settings/keys",
                       data={"name": "sneaky", "csrf_token": csrf_token(other.get(system.url +
                                                                                   "/dashboard/dev/settings").text)})
    assert stolen.status_code == 403
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM api_keys") == before
    accepted = http.post(system.url + "/dashboard/dev/settings/keys",
                         data={"name": "made-here", "csrf_token": csrf_token(page.text)})
    assert accepted.status_code == 200 and "made-here" in accepted.text


def test_bad_input_rerenders_the_form_with_the_stores_message_and_changes_nothing(system):
    http = browser()
    page = http.get(system.url + "/dashboard/dev/settings")
    before = raw_rows(system.database_url, "SELECT COUNT(*) FROM api_keys")
    answer = http.post(system.url + "/dashboard/dev/settings/keys",
                       data={"name": "no spaces allowed!", "csrf_token": csrf_token(page.text)})
    assert answer.status_code == 400
    assert "name must be" in answer.text and 'role="alert"' in answer.text
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM api_keys") == before
    form = http.get(system.url + "/dashboard/dev/integrations/new?q=github&provider=github")
    bad = http.post(system.url + "/dashboard/dev/integrations/new", data={
        "provider": "github", "unique_key": "bad/key?", "csrf_token": csrf_token(form.text)})
    assert bad.status_code == 400 and 'role="alert"' in bad.text and 'value="bad/key?"' in bad.text
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM integrations") == [(0,)]


def test_the_api_is_untouched(system):
    assert system.session().get(system.url + "/integrations").status_code == 200
    assert requests.get(system.url + "/integrations").status_code == 401
    assert requests.get(system.url + "/dashboardx").status_code == 404


def test_the_dashboard_refuses_callers_without_the_internal_key(system):
    assert requests.get(system.service_url("dashboard") + "/dashboard/dev/integrations").status_code == 403
    assert requests.get(system.service_url("dashboard") + "/healthz").status_code == 200


def test_the_store_honours_an_actor_only_from_internal_callers(system):
    # Through the gateway the header is dropped (X-Authport-* never passes): the record names the key.
    answer = system.session().post(system.url + "/environment/keys", json={"name": "via-api"},
                                   headers={"X-Authport-Actor": "dashboard:mallory"})
    assert answer.status_code == 201
    rows = raw_rows(system.database_url, "SELECT actor FROM operations WHERE kind = 'key.created' "
                                         "AND detail LIKE '%via-api%'")
    assert rows == [("key:default",)]
