"""Expiry moments at the edges of what a datetime can hold: an API caller's is refused with a 400
(nothing written), a provider's token answer is clamped; neither ever becomes a 500."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.builders import connection_body, gateway, get_connection, make_connection, oauth2_tokens, unique
from tests.support.databases import raw_rows
from tests.support.system import catalogue_system

OUT_OF_RANGE = "Invalid date: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
LATEST = "9999-12-31T23:59:59.999Z"
EARLIEST = "1970-01-01T00:00:00.000Z"

REFUSED = [
    ("year-1-east", "0001-01-01T00:00:00+14:00", OUT_OF_RANGE),
    ("year-1-utc", "0001-01-01T00:00:00Z", OUT_OF_RANGE),  # accepted, it would overflow on every read
    ("year-9999-west", "9999-12-31T23:59:59-14:00", OUT_OF_RANGE),
    ("year-9999-west-naive-minute", "9999-12-31T23:59:00-00:01", OUT_OF_RANGE),
    ("before-epoch", "1969-12-31T23:59:59Z", OUT_OF_RANGE),
    ("epoch-1e20", 1e20, OUT_OF_RANGE),
    ("epoch-huge-int", 10**30, OUT_OF_RANGE),
    ("epoch-400-digits", "9" * 400, OUT_OF_RANGE),
    ("epoch-negative", -1, OUT_OF_RANGE),
    ("epoch-negative-ms", -1e13, OUT_OF_RANGE),
    ("year-10000", "10000-01-01T00:00:00Z", "Invalid date"),
    ("negative-text", "-5", "Invalid date"),
    ("exponent-text", "1e20", "Invalid date"),
]

ACCEPTED = [
    ("last-second", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"),
    ("last-day-east", "9999-12-31T23:59:59+14:00", "9999-12-31T09:59:59.000Z"),
    ("epoch-start", 0, EARLIEST),
    ("near-max-ms", 253402300799000, "9999-12-31T23:59:59.000Z"),
    ("east-offset", "2090-01-01T00:00:00+14:00", "2089-12-31T10:00:00.000Z"),
]

# What a provider's token endpoint may answer, and the expiry Authport stores (None: now + 1 h).
PROVIDER_ANSWERS = [
    ("expires-in-1e20", {"expires_in": 1e20}, LATEST),
    ("expires-in-huge-int", {"expires_in": 10**40}, LATEST),
    ("expires-in-text-inf", {"expires_in": "Infinity"}, LATEST),
    ("expires-in-minus-1e20", {"expires_in": -1e20}, EARLIEST),
    ("expires-at-9999-west", {"expires_at": "9999-12-31T23:59:59-14:00"}, LATEST),
    ("expires-at-year-1-east", {"expires_at": "0001-01-01T00:00:00+14:00"}, EARLIEST),
    ("expires-at-1e20", {"expires_at": 1e20}, LATEST),
    ("expires-in-hour", {"expires_in": 3600}, None),
]


class TokenEndpoint:
    """A provider's token endpoint that answers `answer` (a JSON object) to every POST /token."""

    def __init__(self):
        self.answer: dict = {}
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls += 1
                body = json.dumps({"access_token": unique("edge-at"), "refresh_token": unique("edge-rt"),
                                   "token_type": "bearer", **outer.answer}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def token_endpoint():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def edge_system(request, tmp_path_factory, token_endpoint):
    catalogue = {"edge-oauth": {"display_name": "Edge OAuth", "auth_mode": "OAUTH2",
                                "authorization_url": f"{token_endpoint.url}/authorize",
                                "token_url": f"{token_endpoint.url}/token",
                                "proxy": {"base_url": token_endpoint.url}}}
    with catalogue_system(tmp_path_factory.mktemp(f"edge-{request.param}"), request.param, catalogue) as running:
        api = gateway(running)
        key = unique("edge")
        created = api.post("/integrations", json={
            "unique_key": key, "provider": "edge-oauth",
            "credentials": {"type": "OAUTH2", "client_id": "edge-client", "client_secret": "edge-secret"}})
        assert created.status_code == 200, created.text
        running.integration_key = key
        running.seed = make_connection(api, key)["connection_id"]
        yield running


def snapshot(system) -> list[tuple]:
    return raw_rows(system.database_url, "SELECT * FROM connections ORDER BY id")


@pytest.mark.parametrize(("value", "message"), [pytest.param(v, m, id=n) for n, v, m in REFUSED])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_an_expiry_out_of_range_is_a_400_and_nothing_is_written(edge_system, value, message, overwrite):
    before = snapshot(edge_system)
    body = connection_body(edge_system.integration_key, credentials=oauth2_tokens(expires_at=value))
    if overwrite:
        body["connection_id"] = edge_system.seed
    response = gateway(edge_system).post("/connections", json=body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_body"
    assert {"path": ["credentials", "expires_at"], "message": message} in [
        {"path": e["path"], "message": e["message"]} for e in error["errors"]], error
    assert snapshot(edge_system) == before


@pytest.mark.parametrize(("value", "stored"), [pytest.param(v, s, id=n) for n, v, s in ACCEPTED])
def test_an_expiry_at_the_edge_of_the_range_is_kept_and_readable(edge_system, value, stored):
    api = gateway(edge_system)
    key = edge_system.integration_key
    made = make_connection(api, key, credentials=oauth2_tokens(expires_at=value))
    assert made["credentials"]["expires_at"] == stored
    read = get_connection(api, key, made["connection_id"])
    assert read.status_code == 200, read.text  # 1970 is expired: this read refreshed it, at the endpoint
    listed = api.get("/connections", params={"connectionId": made["connection_id"]})
    assert listed.status_code == 200, listed.text
    if stored != EARLIEST:
        assert read.json()["credentials"]["expires_at"] == stored


@pytest.mark.parametrize(("answer", "stored"), [pytest.param(a, s, id=n) for n, a, s in PROVIDER_ANSWERS])
def test_a_providers_extreme_expiry_is_clamped_on_refresh(edge_system, token_endpoint, answer, stored):
    api = gateway(edge_system)
    key = edge_system.integration_key
    soon = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()  # inside the 15-minute buffer
    made = make_connection(api, key, credentials=oauth2_tokens(expires_at=soon))
    token_endpoint.answer = answer
    calls = token_endpoint.calls

    refreshed = get_connection(api, key, made["connection_id"])

    assert refreshed.status_code == 200, refreshed.text
    assert token_endpoint.calls == calls + 1
    credentials = refreshed.json()["credentials"]
    assert credentials["access_token"] != made["credentials"]["access_token"]
    if stored is None:
        moment = datetime.fromisoformat(credentials["expires_at"].replace("Z", "+00:00"))
        assert abs((moment - datetime.now(UTC)).total_seconds() - 3600) < 120
    else:
        assert credentials["expires_at"] == stored
    again = get_connection(api, key, made["connection_id"])
    assert again.status_code == 200, again.text  # what was stored reads back without overflow
