"""Integrations CRUD through the gateway, on both backends, as Nango's server answers it
(transcript steps A2–A7 and the SDK's S1–S3, S21)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.builders import (
    ISO_Z,
    OMIT,
    gateway,
    get_connection,
    integration_body,
    make_connection,
    make_integration,
    oauth_app,
    unique,
)
from tests.support.databases import raw_rows

PUBLIC_KEYS = ["unique_key", "provider", "display_name", "logo", "forward_webhooks", "created_at", "updated_at"]


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def test_create_answers_200_with_the_public_record(system, api):
    key = unique("github-test")
    response = api.post("/integrations", json=integration_body(unique_key=key, display_name="GitHub test"))

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert list(data) == PUBLIC_KEYS
    assert data["unique_key"] == key
    assert data["provider"] == "github"
    assert data["display_name"] == "GitHub test"
    assert data["logo"] == f"{system.url}/images/template-logos/github.svg"
    assert data["forward_webhooks"] is True
    assert ISO_Z.match(data["created_at"]) and data["updated_at"] == data["created_at"]


def test_display_name_falls_back_to_the_providers(api):
    data = make_integration(api, display_name=OMIT)
    assert data["display_name"] == "GitHub"


def test_a_duplicate_unique_key_is_refused_on_path_unique_key(api):
    first = make_integration(api)
    response = api.post("/integrations", json=integration_body(unique_key=first["unique_key"]))

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_body", "errors": [
        {"code": "invalid_string", "message": "Unique key already exists", "path": ["uniqueKey"]}]}}


def test_an_unknown_provider_is_refused_on_path_provider(api):
    response = api.post("/integrations", json={"unique_key": unique("nope"), "provider": "not-a-provider"})

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_body", "errors": [
        {"code": "invalid_string", "message": "Invalid provider", "path": ["provider"]}]}}


def test_concurrent_creates_of_one_key_make_exactly_one_integration(system, api):
    body = integration_body()

    def create(_):
        return gateway(system).post("/integrations", json=body)

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(r.status_code for r in pool.map(create, range(8)))

    assert statuses == [200] + [400] * 7
    rows = raw_rows(system.database_url,
                    f"SELECT id FROM integrations WHERE unique_key = '{body['unique_key']}'")
    assert len(rows) == 1


def test_list_and_get_return_the_created_record(api):
    created = make_integration(api)

    listed = api.get("/integrations")
    fetched = api.get(f"/integrations/{created['unique_key']}")

    assert listed.status_code == 200
    assert created in listed.json()["data"]
    assert fetched.status_code == 200
    assert fetched.json() == {"data": created}


def test_include_credentials_and_webhook(api):
    created = make_integration(api, credentials=oauth_app(client_id="cid-7", client_secret="secret-7"))
    key = created["unique_key"]

    both = api.get(f"/integrations/{key}?include=credentials&include=webhook").json()["data"]
    only_credentials = api.get(f"/integrations/{key}", params={"include": "credentials"}).json()["data"]
    only_webhook = api.get(f"/integrations/{key}", params={"include": "webhook"}).json()["data"]

    assert list(both) == ["unique_key", "provider", "display_name", "logo", "webhook_url", "credentials",
                          "forward_webhooks", "created_at", "updated_at"]
    assert both["webhook_url"] is None
    assert both["credentials"] == {"type": "OAUTH2", "client_id": "cid-7", "client_secret": "secret-7",
                                   "scopes": "repo,user", "webhook_secret": None}
    assert "webhook_url" not in only_credentials and only_credentials["credentials"] == both["credentials"]
    assert "credentials" not in only_webhook and only_webhook["webhook_url"] is None


def test_the_client_secret_is_not_stored_in_clear(system, api):
    secret = unique("very-secret")
    created = make_integration(api, credentials=oauth_app(client_secret=secret))

    rows = raw_rows(system.database_url,
                    f"SELECT * FROM integrations WHERE unique_key = '{created['unique_key']}'")
    assert len(rows) == 1
    assert secret not in repr(rows)


def test_patch_renames_and_updates(api):
    created = make_integration(api, display_name="Before")
    new_key = unique("renamed")

    response = api.patch(f"/integrations/{created['unique_key']}", json={
        "unique_key": new_key, "display_name": "After",
        "credentials": oauth_app(client_id="new-id", client_secret="new-secret", scopes="repo")})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["unique_key"], data["display_name"]) == (new_key, "After")
    assert data["created_at"] == created["created_at"] and data["updated_at"] >= created["updated_at"]
    assert api.get(f"/integrations/{created['unique_key']}").status_code == 404
    credentials = api.get(f"/integrations/{new_key}?include=credentials").json()["data"]["credentials"]
    assert (credentials["client_id"], credentials["client_secret"], credentials["scopes"]) == (
        "new-id", "new-secret", "repo")


def test_patch_cannot_take_another_integrations_key(api):
    first, second = make_integration(api), make_integration(api)

    response = api.patch(f"/integrations/{second['unique_key']}", json={"unique_key": first["unique_key"]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert response.json()["error"]["errors"][0]["path"] == ["uniqueKey"]
    assert api.get(f"/integrations/{second['unique_key']}").json()["data"] == second


def test_patch_cannot_rename_an_integration_with_connections(api):
    created = make_integration(api)
    make_connection(api, created["unique_key"])

    response = api.patch(f"/integrations/{created['unique_key']}", json={"unique_key": unique("other")})

    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["path"] == ["uniqueKey"]
    assert api.get(f"/integrations/{created['unique_key']}").status_code == 200


def test_patch_of_an_unknown_integration_is_404(api):
    response = api.patch(f"/integrations/{unique('missing')}", json={"display_name": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_delete_then_404_and_the_key_is_free_again(api):
    created = make_integration(api)
    key = created["unique_key"]
    connection = make_connection(api, key)

    deleted = api.delete(f"/integrations/{key}")

    assert deleted.status_code == 200
    assert deleted.json() == {"success": True}
    missing = api.get(f"/integrations/{key}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert api.delete(f"/integrations/{key}").status_code == 404
    assert key not in [i["unique_key"] for i in api.get("/integrations").json()["data"]]
    # Its connections went with it.
    assert get_connection(api, key, connection["connection_id"]).status_code == 400
    # A new integration may take the key of a deleted one.
    assert make_integration(api, unique_key=key)["unique_key"] == key


def test_an_api_key_provider_needs_no_app_credentials(api):
    data = make_integration(api, provider="stripe", credentials=OMIT)
    assert data["provider"] == "stripe"
    fetched = api.get(f"/integrations/{data['unique_key']}?include=credentials").json()["data"]
    assert fetched["credentials"] is None


def test_app_credentials_do_not_fit_an_oauth2_provider(api):
    body = integration_body(credentials={"type": "APP", "app_id": "1", "app_link": "https://x",
                                         "private_key": "-----BEGIN RSA PRIVATE KEY-----"})
    response = api.post("/integrations", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert response.json()["error"]["errors"][0]["path"] == ["credentials"]
    assert api.get(f"/integrations/{body['unique_key']}").status_code == 404
