"""The built-in catalogue through the API, extended by a PROVIDERS_FILE: every provider is served by
GET /providers and GET /providers/:name, and integrations can be created from a sample of each auth
mode (with the app credentials the mode takes)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from common.providers import Catalogue
from tests.support.system import make_system

BEARER = {"authorization": "Bearer ${apiKey}"}
OWN = {"my-api": {"display_name": "My own API", "auth_mode": "API_KEY",
                  "proxy": {"base_url": "https://api.example.com", "headers": BEARER}},
       # Same name as a built-in entry: replaces it.
       "stripe": {"display_name": "Stripe (own entry)", "auth_mode": "API_KEY",
                  "proxy": {"base_url": "https://stripe.example.com", "headers": BEARER}}}
APP_CREDENTIALS = {"OAUTH2", "OAUTH1", "TBA"}  # the modes whose integration holds a client id and secret
SAMPLE = 4  # providers per auth mode, spread over the alphabet


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("catalogue")
    (tmp_dir / "providers.yaml").write_text(yaml.safe_dump(OWN))
    system = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", DEFAULT_PLAN="growth",
                         PROVIDERS_FILE=str(tmp_dir / "providers.yaml")).start()
    yield system
    system.stop()


@pytest.fixture(scope="module")
def api(running):
    return running.session()


def test_get_providers_serves_the_builtin_catalogue_and_the_file(running, api, builtin):
    served = api.get(running.url + "/providers").json()["data"]
    names = [p["name"] for p in served]
    assert names == builtin.names() + ["my-api"]
    by_name = {p["name"]: p for p in served}
    assert by_name["stripe"]["display_name"] == "Stripe (own entry)"
    for name, entry in builtin.all():
        if name != "stripe":
            assert {k: v for k, v in by_name[name].items() if k not in ("name", "logo_url")} == entry, name


def test_get_provider_serves_every_entry(running, api, builtin):
    for name, entry in builtin.all():
        answer = api.get(f"{running.url}/providers/{name}")
        assert answer.status_code == 200, name
        data = answer.json()["data"]
        assert data["name"] == name and data["auth_mode"] == (entry["auth_mode"] if name != "stripe" else "API_KEY")
    assert api.get(running.url + "/providers/my-api").json()["data"]["display_name"] == "My own API"


def samples(builtin: Catalogue) -> list[tuple[str, str]]:
    by_mode: dict[str, list[str]] = {}
    for name, entry in builtin.all():
        by_mode.setdefault(entry["auth_mode"], []).append(name)
    picked = []
    for mode, names in sorted(by_mode.items()):
        step = max(len(names) // SAMPLE, 1)
        picked += [(mode, name) for name in names[::step][:SAMPLE]]
    return picked


def test_an_integration_can_be_created_for_a_sample_of_each_auth_mode(running, api, builtin):
    picked = samples(builtin)
    assert {mode for mode, _ in picked} >= {"OAUTH2", "OAUTH2_CC", "OAUTH1", "API_KEY", "BASIC", "TBA"}
    for mode, provider in picked:
        key = f"{provider}-{uuid.uuid4().hex[:6]}"
        body = {"unique_key": key, "provider": provider}
        if mode in APP_CREDENTIALS:
            body["credentials"] = {"type": mode, "client_id": "test-client-id", "client_secret": "test-client-secret",
                                   **({"scopes": "read"} if mode == "OAUTH2" else {})}
        created = api.post(running.url + "/integrations", json=body)
        assert created.status_code == 200, (provider, created.text)
        read = api.get(f"{running.url}/integrations/{key}", params={"include": "credentials"}).json()["data"]
        assert read["provider"] == provider and read["display_name"] == builtin.get(provider)["display_name"]
        if mode in APP_CREDENTIALS:
            assert read["credentials"]["client_id"] == "test-client-id", provider
