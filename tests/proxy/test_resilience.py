"""Misbehaving upstreams: retries, timeouts, unreachable hosts, oversized and endless answers,
gzip bombs. Each case answers in the JSON error shape (or cuts the stream short) and the proxy
keeps serving afterwards."""

from __future__ import annotations

import time

import pytest
import requests

from tests.proxy.builders import OAUTH2, connect, echo, error, gateway, proxied


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


@pytest.fixture(scope="module")
def oauth(api):
    return connect(api, "echo-oauth", OAUTH2)


@pytest.fixture(autouse=True)
def still_healthy(api, oauth, system):
    yield
    assert requests.get(system.service_url("proxy") + "/healthz", timeout=5).status_code == 200
    assert echo(proxied(api, "GET", "/after", *oauth))["target"] == "/after"


def test_503_with_retry_after_is_retried_until_it_succeeds(api, oauth, upstream):
    path = f"/status/503?retry_after=1&times=2&n={time.monotonic_ns()}"
    started = time.monotonic()
    response = proxied(api, "GET", path, *oauth, headers={"Retries": "3"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 2  # waited the announced second twice
    hits = [r for r in upstream.received if r.target == path]
    assert len(hits) == 3


def test_without_retries_the_upstream_error_comes_back(api, oauth, upstream):
    path = f"/status/503?times=5&n={time.monotonic_ns()}"
    response = proxied(api, "GET", path, *oauth)
    assert response.status_code == 503 and response.content == b'{"error":"upstream"}'
    assert len([r for r in upstream.received if r.target == path]) == 1


def test_retry_on_codes(api, oauth, upstream):
    path = f"/status/409?times=1&n={time.monotonic_ns()}"
    assert proxied(api, "GET", path, *oauth, headers={"Retries": "2", "Retry-On": "409"}).status_code == 200
    assert len([r for r in upstream.received if r.target == path]) == 2
    plain = f"/status/409?times=1&n={time.monotonic_ns()}"
    assert proxied(api, "GET", plain, *oauth, headers={"Retries": "2"}).status_code == 409


def test_retries_stop_at_the_total_deadline(api, oauth):
    started = time.monotonic()
    response = proxied(api, "GET", f"/status/503?retry_after=30&n={time.monotonic_ns()}", *oauth,
                       headers={"Retries": "5"})
    assert response.status_code == 503  # a 30 s wait does not fit in the 8 s deadline: last answer returned
    assert time.monotonic() - started < 3


def test_a_slow_upstream_answers_504(api, oauth):
    started = time.monotonic()
    response = proxied(api, "GET", "/slow?seconds=5", *oauth)
    assert response.status_code == 504
    assert error(response)["code"] == "upstream_timeout"
    assert time.monotonic() - started < 4.5


def test_an_unreachable_upstream_answers_502(api):
    connection = connect(api, "closed", {"type": "API_KEY", "apiKey": "k"})
    response = proxied(api, "GET", "/x", *connection, headers={"Retries": "1"})
    assert response.status_code == 502
    assert error(response)["code"] == "upstream_unreachable"


def test_an_announced_oversized_answer_is_refused(api, oauth):
    response = proxied(api, "GET", "/bytes?n=9000000", *oauth)
    assert response.status_code == 502
    assert error(response)["code"] == "upstream_response_too_large"


def test_an_endless_answer_is_cut_at_the_cap(api, oauth):
    received = 0
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with proxied(api, "GET", "/endless", *oauth, stream=True) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(65536):
                received += len(chunk)
    assert received <= 8 * 1024 * 1024


def test_a_dripping_answer_is_cut_at_the_total_deadline(api, oauth):
    started = time.monotonic()
    with pytest.raises(requests.exceptions.RequestException):
        with proxied(api, "GET", "/drip", *oauth, stream=True) as response:
            for _ in response.iter_content(1):
                pass
    assert time.monotonic() - started < 12


def test_a_gzip_bomb_is_not_inflated_past_the_cap(api, oauth):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with proxied(api, "GET", "/gzip-bomb?mib=64", *oauth, headers={"Decompress": "true"}, stream=True) as response:
            assert "Content-Encoding" not in response.headers
            for _ in response.iter_content(65536):
                pass
    compressed = proxied(api, "GET", "/gzip-bomb?mib=2", *oauth, stream=True)
    assert compressed.headers["Content-Encoding"] == "gzip"  # passed on as sent when not asked to inflate
    assert int(compressed.headers["Content-Length"]) == len(compressed.raw.read())


def test_decompress_inflates_an_honest_answer(api, oauth):
    response = proxied(api, "GET", "/gzip-bomb?mib=1", *oauth, headers={"Decompress": "true"})
    assert response.status_code == 200 and response.content == b"\0" * (1 << 20)
    assert "Content-Encoding" not in response.headers
