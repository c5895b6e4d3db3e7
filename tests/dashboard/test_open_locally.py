"""Without NANGO_DASHBOARD_USERNAME/PASSWORD the dashboard serves this machine only: loopback
clients under a local host name, with a banner saying how to secure it; anyone else gets 401 and
that explanation (the client address is the one the gateway resolved, after TRUSTED_PROXIES)."""

from __future__ import annotations

import pytest
import requests

from tests.support.databases import raw_rows


@pytest.fixture(scope="module")
def system_env():
    return {"TRUSTED_PROXIES": "1"}


def test_loopback_clients_get_the_pages_with_a_banner(system):
    answer = requests.get(system.url + "/dashboard/dev/integrations")
    assert answer.status_code == 200
    assert "NANGO_DASHBOARD_USERNAME" in answer.text and 'class="banner"' in answer.text


def test_other_addresses_are_refused_with_the_explanation(system):
    answer = requests.get(system.url + "/dashboard/dev/integrations", headers={"X-Forwarded-For": "203.0.113.5"})
    assert answer.status_code == 401
    assert "loopback" in answer.text and "NANGO_DASHBOARD_PASSWORD" in answer.text
    assert "WWW-Authenticate" not in answer.headers  # no credentials would help
    page = requests.get(system.url + "/dashboard/dev/settings")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    posted = requests.post(system.url + "/dashboard/dev/settings/keys", data={"name": "remote", "csrf_token": token},
                           cookies=page.cookies, headers={"X-Forwarded-For": "203.0.113.5"})
    assert posted.status_code == 401
    assert raw_rows(system.database_url, "SELECT COUNT(*) FROM api_keys WHERE name = 'remote'") == [(0,)]


def test_a_foreign_host_name_is_refused(system):
    """A page that rebinds its own name to 127.0.0.1 must not read the open dashboard."""
    answer = requests.get(system.url + "/dashboard/dev/integrations", headers={"Host": "attacker.example"})
    assert answer.status_code == 403


def test_a_client_cannot_name_its_own_address_to_the_dashboard(system):
    """The gateway drops X-Authport-* from callers and sends the address it resolved itself."""
    answer = requests.get(system.url + "/dashboard/dev/integrations", headers={
        "X-Forwarded-For": "203.0.113.5", "X-Authport-Client-Address": "127.0.0.1",
        "X-Authport-Client-Host": "localhost"})
    assert answer.status_code == 401
