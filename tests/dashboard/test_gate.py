"""The dashboard's gate and CSRF tokens, in process (the refusals through the real gateway are in
test_access.py and test_open_locally.py)."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Authorization

from common.settings import load_settings
from common.startup import StartupError
from services.dashboard.access import FAILURE_LIMIT, Gate, is_loopback
from services.dashboard.app import create_app
from services.dashboard.csrf import Csrf


def basic(user: str, password: str) -> Authorization:
    return Authorization("basic", {"username": user, "password": password})


def test_the_right_credentials_pass_even_past_the_failure_limit():
    gate = Gate("ops", "s3cret", "http://localhost:3003")
    for _ in range(FAILURE_LIMIT):
        assert gate.check(basic("ops", "nope"), "10.0.0.1", "x").status == 401
    assert gate.check(basic("ops", "nope"), "10.0.0.1", "x").status == 429
    assert gate.check(basic("ops", "s3cret"), "10.0.0.1", "x").user == "ops"
    assert gate.check(basic("ops", "nope"), "10.0.0.2", "x").status == 401


def test_user_and_password_must_both_match():
    gate = Gate("ops", "s3cret", "http://localhost:3003")
    assert gate.check(basic("other", "s3cret"), "127.0.0.1", "localhost").user is None
    assert gate.check(basic("ops", "s3cret!"), "127.0.0.1", "localhost").user is None
    assert gate.check(None, "127.0.0.1", "localhost").status == 401
    assert gate.check(Authorization("bearer", token="s3cret"), "127.0.0.1", "localhost").user is None


def test_unset_credentials_admit_loopback_under_a_local_host_name_only():
    gate = Gate(None, None, "https://authport.example.com")
    assert gate.check(None, "127.0.0.1", "localhost:3003").user == "local"
    assert gate.check(None, "::1", "[::1]:3003").user == "local"
    assert gate.check(None, "127.0.0.1", "authport.example.com").user == "local"
    assert gate.check(None, "127.0.0.1", "evil.example").status == 403
    refused = gate.check(None, "192.0.2.1", "localhost")
    assert refused.status == 401 and "NANGO_DASHBOARD_USERNAME" in refused.reason
    assert gate.check(None, "unknown", "localhost").status == 401
    assert is_loopback("127.0.0.2") and not is_loopback("10.0.0.1")


def test_csrf_tokens_are_bound_to_their_session():
    csrf = Csrf("internal-key")
    session, other = csrf.new_session(), csrf.new_session()
    assert csrf.valid(session, csrf.token(session))
    assert not csrf.valid(session, csrf.token(other))
    assert not csrf.valid(None, csrf.token(session)) and not csrf.valid(session, None)
    assert not Csrf("another-key").valid(session, csrf.token(session))


def test_one_of_the_two_variables_alone_stops_the_process_naming_the_other():
    with pytest.raises(StartupError, match="^NANGO_DASHBOARD_PASSWORD: set both"):
        create_app(load_settings({"INTERNAL_API_KEY": "k", "NANGO_DASHBOARD_USERNAME": "ops"}))
    with pytest.raises(StartupError, match="^NANGO_DASHBOARD_USERNAME: "):
        create_app(load_settings({"INTERNAL_API_KEY": "k", "NANGO_DASHBOARD_PASSWORD": "pw"}))


def test_a_page_that_fails_unexpectedly_answers_a_page_without_internals():
    app = create_app(load_settings({"INTERNAL_API_KEY": "k", "STORE_URL": "http://127.0.0.1:9"}))
    client = app.test_client()
    headers = {"X-Authport-Internal-Key": "k", "X-Authport-Client-Address": "127.0.0.1",
               "X-Authport-Client-Host": "localhost"}
    answer = client.get("/dashboard/dev/logs", headers=headers)  # the store is unreachable
    assert answer.status_code == 503 and b"unreachable" in answer.data and b"<html" in answer.data
    assert client.get("/nothing", headers=headers).get_json()["error"]["code"] == "not_found"
