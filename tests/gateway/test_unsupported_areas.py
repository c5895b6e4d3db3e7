"""Nango areas Authport does not implement (syncs, records, actions, functions, scripts, flows,
quickstart) answer one explicit 501 `not_supported_by_authport` to an authenticated caller, after
the usual 401 to anyone else, instead of a 404, 405 or 400 that reads like a bug."""

from __future__ import annotations

import pytest

from tests.api.builders import gateway
from tests.support.system import make_system

CALLS = [
    ("POST", "/sync/trigger"), ("POST", "/sync/start"), ("POST", "/sync/pause"), ("GET", "/sync/status"),
    ("PUT", "/sync/update-connection-frequency"), ("POST", "/sync/my-sync/variant/v1"),
    ("GET", "/records"), ("GET", "/records/?model=Contact"), ("PATCH", "/records/prune"),
    ("POST", "/action/trigger"), ("GET", "/action/abc"), ("GET", "/scripts/config?format=openai"),
    ("POST", "/flow/deploy"), ("POST", "/integrations/quickstart"),
    ("GET", "/integrations/github/functions"), ("GET", "/integrations/github/functions/fetch-issues/code"),
    ("GET", "/providers/github/templates"),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("unsupported")
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}").start()
    yield running
    running.stop()


@pytest.mark.parametrize(("method", "path"), CALLS)
def test_an_unsupported_area_is_a_501_for_the_secret_key_and_a_401_for_anyone(system, method, path):
    answer = gateway(system).request(method, path, json={})
    assert answer.status_code == 501, answer.text
    assert answer.json()["error"]["code"] == "not_supported_by_authport"
    assert "Authport does not implement" in answer.json()["error"]["message"]
    anonymous = gateway(system, None).request(method, path, json={})
    assert anonymous.status_code == 401 and "error" in anonymous.json()


def test_neighbouring_routes_are_untouched(system):
    api = gateway(system)
    assert api.get("/integrations").status_code == 200
    made = api.post("/integrations", json={"unique_key": "quickstart", "provider": "github"})
    assert made.status_code == 200, made.text  # a key named like the area is still an integration
    assert api.get("/integrations/quickstart").status_code == 200
    assert api.get("/syncs").status_code == 404  # whole segments only
    assert api.get("/providers/github").status_code == 200  # the provider itself, beside its templates
