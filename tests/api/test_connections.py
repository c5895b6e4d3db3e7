"""Connections through the gateway, on both backends, as Nango's server answers them
(transcript steps A8–A19, B9–B13 and the SDK's S4–S9, S18–S19)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.builders import (
    ISO_Z,
    OMIT,
    UUID4,
    connection_body,
    gateway,
    get_connection,
    list_connections,
    make_connection,
    make_integration,
    oauth2_tokens,
    unique,
)
from tests.support.databases import raw_rows

FULL_KEYS = ["id", "connection_id", "provider_config_key", "provider", "errors", "end_user", "tags", "metadata",
             "connection_config", "webhook_url_override", "created_at", "updated_at", "last_fetched_at",
             "credentials"]
ITEM_KEYS = ["id", "connection_id", "provider_config_key", "provider", "errors", "end_user", "tags", "metadata",
             "created"]
USER_TWO = {"id": "user-2", "email": "user2@example.com", "display_name": "User Two"}


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


@pytest.fixture
def key(api):
    """A fresh integration's unique key, so each test sees only its own connections."""
    return make_integration(api)["unique_key"]


def test_import_answers_201_with_the_full_connection(api, key):
    tokens = oauth2_tokens(access_token="gho_1", refresh_token="ghr_1")
    response = api.post("/connections", json=connection_body(key, connection_id="conn-1", credentials=tokens))

    assert response.status_code == 201, response.text
    data = response.json()
    assert list(data) == FULL_KEYS
    assert (data["connection_id"], data["provider_config_key"], data["provider"]) == ("conn-1", key, "github")
    assert (data["errors"], data["end_user"], data["tags"], data["metadata"]) == ([], None, {}, {})
    assert (data["connection_config"], data["webhook_url_override"]) == ({}, None)
    assert ISO_Z.match(data["created_at"]) and ISO_Z.match(data["last_fetched_at"])
    expected = {"type": "OAUTH2", "access_token": "gho_1", "refresh_token": "ghr_1",
                "expires_at": "2099-01-01T00:00:00.000Z"}
    assert data["credentials"] == {**expected, "raw": expected}


def test_reimport_is_an_upsert_keeping_id_and_created_at(api, key):
    first = make_connection(api, key, connection_id="conn-1")
    second = make_connection(api, key, connection_id="conn-1", credentials=oauth2_tokens(access_token="gho_new"))

    assert (second["id"], second["created_at"]) == (first["id"], first["created_at"])
    assert second["credentials"]["access_token"] == "gho_new"
    assert [c["id"] for c in list_connections(api, integrationId=key)] == [first["id"]]


def test_import_without_id_generates_a_uuid_and_adds_end_user_tags(api, key):
    data = make_connection(api, key, connection_id=OMIT, end_user=USER_TWO, tags={"team": "blue"},
                           credentials={"type": "OAUTH2", "access_token": "gho_2"})

    assert UUID4.match(data["connection_id"])
    assert data["end_user"] == {"id": "user-2", "display_name": "User Two", "email": "user2@example.com",
                                "tags": None, "organization": None}
    assert data["tags"] == {"team": "blue", "end_user_id": "user-2", "end_user_email": "user2@example.com",
                            "end_user_display_name": "User Two"}
    assert data["credentials"] == {"type": "OAUTH2", "access_token": "gho_2",
                                   "raw": {"type": "OAUTH2", "access_token": "gho_2"}}


def test_import_for_an_unknown_integration_is_404(api):
    response = api.post("/connections", json=connection_body(unique("does-not-exist")))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Integration does not exist"}}


def test_import_without_credentials_is_400(api, key):
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": "bad"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_body", "errors": [{
        "code": "invalid_type", "message": "Invalid input: expected object, received undefined",
        "path": ["credentials"]}]}}


def test_credentials_are_not_stored_in_clear(system, api, key):
    made = make_connection(api, key)
    rows = raw_rows(system.database_url, f"SELECT * FROM connections WHERE id = {made['id']}")
    assert len(rows) == 1 and made["credentials"]["access_token"] not in repr(rows)


def test_get_strips_refresh_tokens_at_any_depth_unless_asked(api, key):
    raw = {"refresh_token": "r1", "nested": {"Refresh-Token": "r2", "list": [{"refreshToken": "r3", "keep": 1}]},
           "access_token": "gho_3"}
    made = make_connection(api, key, credentials=oauth2_tokens(access_token="gho_3", refresh_token="r0", raw=raw))
    cid = made["connection_id"]

    stripped = get_connection(api, key, cid)
    full = get_connection(api, key, cid, refresh_token="true")

    assert stripped.status_code == 200, stripped.text
    credentials = stripped.json()["credentials"]
    assert "refresh_token" not in credentials and "r0" not in stripped.text
    assert credentials["raw"] == {"nested": {"list": [{"keep": 1}]}, "access_token": "gho_3"}
    assert full.json()["credentials"]["refresh_token"] == "r0"
    assert full.json()["credentials"]["raw"] == raw


def test_get_shape_timestamps_and_last_fetched_at(system, api, key):
    made = make_connection(api, key)
    time.sleep(0.01)
    first = get_connection(api, key, made["connection_id"], force_refresh="false", refresh_token="false",
                           refresh_github_app_jwt_token="false").json()
    time.sleep(0.01)
    second = get_connection(api, key, made["connection_id"]).json()

    assert list(first) == FULL_KEYS and first["id"] == made["id"]
    # POST and GET format timestamps alike (Nango's server mixes "Z" and "+00:00").
    assert ISO_Z.match(first["created_at"]) and ISO_Z.match(first["last_fetched_at"])
    assert first["created_at"] == made["created_at"]
    assert made["last_fetched_at"] < first["last_fetched_at"] < second["last_fetched_at"]
    stored = raw_rows(system.database_url, f"SELECT last_fetched_at FROM connections WHERE id = {made['id']}")
    assert str(stored[0][0])[:19].replace(" ", "T") == second["last_fetched_at"][:19]


def test_legacy_singular_path_reads_the_same_connection(api, key):
    made = make_connection(api, key)
    response = api.get(f"/connection/{made['connection_id']}", params={"provider_config_key": key})
    assert response.status_code == 200
    assert response.json()["id"] == made["id"]


def test_get_errors(api, key):
    made = make_connection(api, key)

    no_key = api.get(f"/connections/{made['connection_id']}")
    unknown = get_connection(api, key, "missing")
    other_integration = get_connection(api, unique("nope"), made["connection_id"])

    assert no_key.status_code == 400
    assert no_key.json() == {"error": {"code": "invalid_query_params", "errors": [{
        "code": "invalid_type", "message": "Invalid input: expected string, received undefined",
        "path": ["provider_config_key"]}]}}
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "Failed to find connection"}}
    assert other_integration.status_code == 400
    assert other_integration.json()["error"]["code"] == "unknown_provider_config"


def test_list_is_newest_first_with_the_list_shape(api, key):
    older, newer = make_connection(api, key), make_connection(api, key, end_user=USER_TWO)

    items = list_connections(api, integrationId=key)

    assert [i["id"] for i in items] == [newer["id"], older["id"]]
    assert list(items[0]) == ITEM_KEYS
    assert ISO_Z.match(items[0]["created"])
    assert items[0]["end_user"] == newer["end_user"] and items[0]["tags"] == newer["tags"]


def test_list_filters(api, key):
    other = make_integration(api)["unique_key"]
    plain = make_connection(api, key, connection_id=unique("plain"))
    user = make_connection(api, key, end_user={**USER_TWO, "organization": {"id": "org-9"}}, tags={"team": "red"})
    elsewhere = make_connection(api, other, tags={"team": "red"})

    def ids(**params):
        return [c["id"] for c in list_connections(api, integrationId=f"{key},{other}", **params)]

    assert ids() == [elsewhere["id"], user["id"], plain["id"]]
    assert [c["id"] for c in list_connections(api, integrationId=other)] == [elsewhere["id"]]
    assert ids(connectionId=plain["connection_id"]) == [plain["id"]]
    assert ids(search=plain["connection_id"][2:9].upper()) == [plain["id"]]
    assert ids(search="user2@example") == [user["id"]]
    assert ids(endUserId="user-2") == [user["id"]]
    assert ids(endUserOrganizationId="org-9") == [user["id"]]
    assert ids(**{"tags[team]": "red"}) == [elsewhere["id"], user["id"]]
    assert ids(**{"tags[end_user_email]": "user2@example.com"}) == [user["id"]]
    assert ids(limit=2) == [elsewhere["id"], user["id"]]
    assert ids(limit=2, page=1) == [plain["id"]]


def test_search_finds_what_sql_cannot_narrow(api, key):
    # Needles outside the plain set the store narrows in SQL (non-ASCII, stored JSON-escaped; "_",
    # a LIKE wildcard) are matched in Python over every row, in chunks.
    accented = make_connection(api, key, end_user={"id": unique("eu"), "display_name": "Zoë Ünal"})
    underscored = make_connection(api, key, connection_id=unique("snake_case"))
    assert [c["id"] for c in list_connections(api, integrationId=key, search="zoë ü")] == [accented["id"]]
    assert [c["id"] for c in list_connections(api, integrationId=key, search="snake_")] == [underscored["id"]]
    assert [c["id"] for c in list_connections(api, integrationId=key, search="e_c")] == [underscored["id"]]


def test_pages_of_a_python_matched_search_are_read_across_chunks(api, key):
    # "_" is not narrowed in SQL: every row is read in chunks (the first as large as the page,
    # then doubling), rejected rows between them; each page is still the right slice.
    made = []
    for index in range(7):
        made.append(make_connection(api, key, connection_id=unique(f"p_{index}")))
        make_connection(api, key, connection_id=unique(f"other{index}"))
    newest_first = [c["id"] for c in reversed(made)]

    def page(limit: int, number: int) -> list[int]:
        return [c["id"] for c in list_connections(api, integrationId=key, search="p_", limit=limit, page=number)]

    assert [page(1, number) for number in range(8)] == [[made_id] for made_id in newest_first] + [[]]
    assert page(3, 0) + page(3, 1) + page(3, 2) == newest_first


def test_tag_filters_match_keys_in_any_case_and_values_exactly_whatever_their_characters(api, key):
    # The database narrows by lowered JSON (Postgres: an indexed jsonb containment; SQLite: LIKE);
    # escapes, non-ASCII and case must neither lose a match nor let a wrong one through.
    odd = make_connection(api, key, tags={"Team": "Zoë \\ 100%_x", "Plan": "PRO"})
    make_connection(api, key, tags={"team": "zoë \\ 100%_x", "plan": "pro"})

    def ids(**tags):
        return [c["id"] for c in list_connections(api, integrationId=key, **{f"tags[{k}]": v for k, v in tags.items()})]

    assert ids(team="Zoë \\ 100%_x") == ids(TEAM="Zoë \\ 100%_x") == [odd["id"]]
    assert ids(team="Zoë \\ 100%_x", plan="PRO") == [odd["id"]]
    assert ids(team="Zoë \\ 100%_x", plan="pro") == [] and ids(team="Zoë") == []


def test_delete_is_soft_and_the_id_can_be_reused(system, api, key):
    made = make_connection(api, key)
    cid = made["connection_id"]

    deleted = api.delete(f"/connections/{cid}", params={"provider_config_key": key})

    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert get_connection(api, key, cid).status_code == 404
    assert list_connections(api, integrationId=key) == []
    again = api.delete(f"/connections/{cid}", params={"provider_config_key": key})
    assert again.status_code == 400 and again.json() == {"error": {"code": "unknown_connection"}}
    kept = raw_rows(system.database_url, f"SELECT deleted_at FROM connections WHERE id = {made['id']}")
    assert len(kept) == 1 and kept[0][0] is not None
    reimported = make_connection(api, key, connection_id=cid)
    assert get_connection(api, key, cid).json()["id"] == reimported["id"]


def test_metadata_set_replaces_and_update_merges(api, key):
    cid = make_connection(api, key)["connection_id"]
    body = {"connection_id": cid, "provider_config_key": key, "metadata": {"plan": "pro", "nested": {"a": 1}}}

    created = api.post("/connections/metadata", json=body)
    merged = api.patch("/connections/metadata", json={**body, "metadata": {"nested": {"b": 2}, "extra": True}})

    assert (created.status_code, created.json()) == (201, body)
    assert merged.status_code == 200 and merged.json()["metadata"] == {"nested": {"b": 2}, "extra": True}
    assert get_connection(api, key, cid).json()["metadata"] == {"plan": "pro", "nested": {"b": 2}, "extra": True}
    api.post("/connections/metadata", json={**body, "metadata": {"only": 1}})
    assert get_connection(api, key, cid).json()["metadata"] == {"only": 1}


def test_metadata_for_several_connections_is_all_or_nothing(api, key):
    one, two = make_connection(api, key)["connection_id"], make_connection(api, key)["connection_id"]
    body = {"connection_id": [one, two], "provider_config_key": key, "metadata": {"v": 1}}

    both = api.post("/connections/metadata", json=body)
    partial = api.patch("/connections/metadata", json={**body, "connection_id": [one, "missing"],
                                                       "metadata": {"v": 2}})

    assert (both.status_code, both.json()) == (201, body)
    assert partial.status_code == 404 and partial.json()["error"]["code"] == "unknown_connection"
    assert [get_connection(api, key, c).json()["metadata"] for c in (one, two)] == [{"v": 1}, {"v": 1}]


def test_concurrent_metadata_merges_of_one_connection_all_land(system, key):
    """Merges are read-modify-write: each row is locked while it is merged, so none is lost."""
    cid = make_connection(gateway(system), key)["connection_id"]

    def merge(n: int) -> int:
        return gateway(system).patch("/connections/metadata", json={
            "connection_id": cid, "provider_config_key": key, "metadata": {f"k{n}": n}}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(merge, range(40)))
    assert statuses == [200] * 40
    assert get_connection(gateway(system), key, cid).json()["metadata"] == {f"k{n}": n for n in range(40)}


def test_legacy_metadata_path_uses_the_header_and_echoes_the_metadata(api, key):
    cid = make_connection(api, key, metadata={"old": True})["connection_id"]
    headers = {"Provider-Config-Key": key}

    replaced = api.post(f"/connection/{cid}/metadata", json={"legacy": "yes"}, headers=headers)
    merged = api.patch(f"/connection/{cid}/metadata", json={"more": 1}, headers=headers)
    missing = api.post(f"/connection/{unique('nope')}/metadata", json={"a": 1}, headers=headers)

    assert (replaced.status_code, replaced.json()) == (201, {"legacy": "yes"})
    assert (merged.status_code, merged.json()) == (200, {"more": 1})
    assert get_connection(api, key, cid).json()["metadata"] == {"legacy": "yes", "more": 1}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_connection"


def test_patch_connection_sets_end_user_and_tags(api, key):
    cid = make_connection(api, key, tags={"team": "blue"})["connection_id"]
    params = {"provider_config_key": key}

    patched = api.patch(f"/connections/{cid}", params=params, json={
        "end_user": {"id": "u-9", "email": "u9@example.com"}, "tags": {"team": "green"}})

    assert (patched.status_code, patched.json()) == (200, {"success": True})
    data = get_connection(api, key, cid).json()
    assert data["end_user"]["id"] == "u-9" and data["end_user"]["email"] == "u9@example.com"
    assert data["tags"] == {"team": "green", "end_user_id": "u-9", "end_user_email": "u9@example.com"}
    assert [c["connection_id"] for c in list_connections(api, endUserId="u-9")] == [cid]
    missing = api.patch(f"/connections/{unique('nope')}", params=params, json={"tags": {"a": "b"}})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
