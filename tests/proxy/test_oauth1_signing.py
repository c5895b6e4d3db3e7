"""Proxied calls of OAUTH1 connections, signed per RFC 5849 and checked by an upstream that verifies
every signature with its own implementation (stdlib only: it shares no code with authlib or the
proxy, and is itself checked against the RFC's worked examples)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from common.request_signing import OAuth1Signer
from tests.proxy.builders import error, gateway, proxied, unique
from tests.support.system import catalogue_system

FORM = "application/x-www-form-urlencoded"


def enc(value: str) -> str:
    """RFC 5849 §3.6: percent-encode all but the unreserved characters, UTF-8 first."""
    return quote(value.encode(), safe="-._~")


def base_string(method: str, scheme: str, host: str, target: str, params: list[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: method, base string URI and the normalized parameters."""
    host = host.lower().removesuffix(":80" if scheme == "http" else ":443")
    pairs = sorted((enc(k), enc(v)) for k, v in params if k not in ("oauth_signature", "realm"))
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    uri = f"{scheme}://{host}{urlsplit(target).path or '/'}"
    return "&".join(enc(part) for part in (method.upper(), uri, normalized))


def hmac_sha1(text: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{enc(consumer_secret)}&{enc(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha1).digest()).decode()


def oauth_header(value: str) -> dict[str, str]:
    assert value.startswith("OAuth "), value
    pairs = (item.strip().split("=", 1) for item in value[len("OAuth "):].split(","))
    return {unquote(k): unquote(v.strip('"')) for k, v in pairs}


def signed_params(method: str, target: str, headers: dict[str, str], body: bytes) -> list[tuple[str, str]]:
    """Every parameter a signature covers: query, form body, Authorization (§3.4.1.3.1)."""
    params = parse_qsl(urlsplit(target).query, keep_blank_values=True)
    if headers.get("content-type", "").split(";")[0].strip() == FORM:
        params += parse_qsl(body.decode(), keep_blank_values=True)
    return params + list(oauth_header(headers["authorization"]).items())


def verify(method, target, headers, body, consumer_secret, token_secret) -> bool:
    """HMAC-SHA1 with the secrets, or RSA-SHA1 (§3.4.3) when `consumer_secret` is an RSA public key."""
    oauth = oauth_header(headers["authorization"])
    text = base_string(method, "http", headers["host"], target, signed_params(method, target, headers, body))
    if isinstance(consumer_secret, rsa.RSAPublicKey):
        try:
            consumer_secret.verify(base64.b64decode(oauth["oauth_signature"]), text.encode(), padding.PKCS1v15(),
                                   hashes.SHA1())  # noqa: S303 - RSA-SHA1 is what the RFC names
        except InvalidSignature:
            return False
        return True
    return hmac.compare_digest(hmac_sha1(text, consumer_secret, token_secret), oauth["oauth_signature"])


def test_the_independent_verifier_agrees_with_the_rfc_examples():
    # RFC 5849 §3.4.1.1: the signature base string of its example request.
    headers = {"authorization": 'OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", '
               'oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", '
               'oauth_nonce="7d8f3e4a", oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"', "content-type": FORM}
    target = "/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
    assert base_string("POST", "http", "example.com", target, signed_params("POST", target, headers, b"c2&a3=2+q")) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540"
        "%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3D"
        "HMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7")
    # RFC 5849 §1.2: a signed request to photos.example.net with known secrets.
    headers = {"host": "photos.example.net", "authorization": 'OAuth realm="Photos", oauth_consumer_key='
               '"dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", '
               'oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"'}
    target = "/photos?file=vacation.jpg&size=original"
    assert verify("GET", target, headers, b"", "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
    assert not verify("GET", target, headers, b"", "kd94hf93k423kf45", "pfkkdhi9sl3r4s00")


def test_the_signer_covers_raw_brackets_and_plain_http():
    signer = OAuth1Signer("ck", "c&s", "tok", "t s", "HMAC-SHA1")
    target = "/v1/cards?filter[state]=open&q=%C3%A9+x"
    headers = {"host": "api.example.com:8080", "content-type": FORM}
    headers.update(signer("POST", "http://api.example.com:8080" + target, headers, b"a=1&a=2&b="))
    assert verify("POST", target, headers, b"a=1&a=2&b=", "c&s", "t s")
    assert not verify("POST", target, headers, b"a=1&a=3&b=", "c&s", "t s")


class SignedApi:
    """An upstream that answers 200 only to requests signed for a consumer and token it knows.

    `/api/flaky/…` answers 503 to its first request (after checking its signature). Every request
    is recorded with its verdict."""

    def __init__(self):
        self.consumers: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.received: list[dict] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = api.handle(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                             body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        oauth = oauth_header(headers["authorization"]) if headers.get("authorization", "").startswith("OAuth ") else {}
        consumer_secret = self.consumers.get(oauth.get("oauth_consumer_key", ""))
        token_secret = self.tokens.get(oauth.get("oauth_token", ""))
        fresh = abs(time.time() - int(oauth.get("oauth_timestamp") or 0)) < 300
        with self.lock:
            replayed = any(r["oauth"].get("oauth_nonce") == oauth.get("oauth_nonce") for r in self.received)
            method_expected = "RSA-SHA1" if isinstance(consumer_secret, rsa.RSAPublicKey) else "HMAC-SHA1"
            valid = (None not in (consumer_secret, token_secret) and fresh and not replayed
                     and oauth.get("oauth_signature_method") == method_expected
                     and verify(method, target, headers, body, consumer_secret, token_secret))
            self.received.append({"method": method, "target": target, "headers": headers, "body": body,
                                  "oauth": oauth, "valid": valid})
            flaky_first = urlsplit(target).path.startswith("/api/flaky/") and not any(
                r["target"] == target for r in self.received[:-1])
        if not valid:
            return 401, {"error": "invalid_signature"}
        return (503, {"error": "try again"}) if flaky_first else (200, {"verified": True, "target": target})

    def last(self) -> dict:
        return self.received[-1]


@pytest.fixture(scope="module")
def signed_api():
    api = SignedApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def system(request, tmp_path_factory, signed_api):
    tmp_dir = tmp_path_factory.mktemp(f"oauth1-proxy-{request.param}")
    catalogue = {"signed-api": {
        "auth_mode": "OAUTH1", "request_url": signed_api.url + "/request_token",
        "authorization_url": signed_api.url + "/authorize", "token_url": signed_api.url + "/access_token",
        "signature_method": "HMAC-SHA1",
        "proxy": {"base_url": signed_api.url + "/api", "query": {"format": "json"}}}}
    catalogue["rsa-api"] = {**catalogue["signed-api"], "signature_method": "RSA-SHA1"}
    with catalogue_system(tmp_dir, request.param, catalogue, PROXY_RETRY_BACKOFF="0.2",
                          PROXY_MAX_REPLAY_BYTES="4K") as running:
        yield running


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def oauth1_connection(api, signed_api, *, known_secret: bool = True) -> tuple[str, str]:
    """An integration with a consumer key and secret and an imported OAUTH1 connection."""
    consumer_key, consumer_secret = unique("ck"), "cs-" + secrets.token_hex(8) + "&+/ é"
    token, token_secret = unique("tok"), "ts-" + secrets.token_hex(8) + "%=~"
    signed_api.consumers[consumer_key] = consumer_secret if known_secret else "the-real-one"
    signed_api.tokens[token] = token_secret
    key = unique("signed")
    response = api.post("/integrations", json={"unique_key": key, "provider": "signed-api", "credentials": {
        "type": "OAUTH1", "client_id": consumer_key, "client_secret": consumer_secret}})
    assert response.status_code == 200, response.text
    connection_id = unique("conn")
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": {"type": "OAUTH1", "oauth_token": token,
                                                              "oauth_token_secret": token_secret}})
    assert response.status_code == 201, response.text
    return key, connection_id


@pytest.fixture(scope="module")
def signed(api, signed_api):
    return oauth1_connection(api, signed_api)


def secrets_of(signed_api, got: dict) -> tuple[str, str]:
    return signed_api.consumers[got["oauth"]["oauth_consumer_key"]], signed_api.tokens[got["oauth"]["oauth_token"]]


def test_get_with_query_parameters_is_signed(api, signed_api, signed):
    response = proxied(api, "GET", "/boards/1?fields=name,url&filter[state]=open&q=a%20b+c", *signed)
    assert response.status_code == 200, response.text
    got = signed_api.last()
    assert got["valid"]  # requests sends the brackets percent-encoded
    assert got["target"] == "/api/boards/1?fields=name,url&filter%5Bstate%5D=open&q=a%20b+c&format=json"
    assert got["oauth"]["oauth_signature_method"] == "HMAC-SHA1" and got["oauth"]["oauth_version"] == "1.0"
    assert "oauth_body_hash" not in got["oauth"]
    consumer_secret, token_secret = secrets_of(signed_api, got)
    args = (got["method"], got["target"], got["headers"], got["body"])
    assert verify(*args, consumer_secret, token_secret)
    assert not verify(*args, consumer_secret + "x", token_secret)  # a wrong secret fails
    assert not verify(*args, consumer_secret, token_secret + "x")
    # Both the caller's and the injected query parameters are covered.
    for before, after in (("fields=name,url", "fields=name"), ("format=json", "format=xml")):
        tampered = got["target"].replace(before, after)
        assert not verify(got["method"], tampered, got["headers"], got["body"], consumer_secret, token_secret)


def test_form_body_parameters_are_signed_and_json_bodies_are_not(api, signed_api, signed):
    form = b"name=New%20card&idList=abc&pos=top&desc=a+b%26c"
    response = proxied(api, "POST", "/cards", *signed, data=form,
                       headers={"Content-Type": FORM + "; charset=utf-8"})
    assert response.status_code == 200, response.text
    got = signed_api.last()
    assert got["valid"] and got["body"] == form
    consumer_secret, token_secret = secrets_of(signed_api, got)
    tampered = form.replace(b"pos=top", b"pos=bottom")
    assert not verify("POST", got["target"], got["headers"], tampered, consumer_secret, token_secret)
    as_json = {**got["headers"], "content-type": "application/json"}  # were the body left out, it would not verify
    assert not verify("POST", got["target"], as_json, form, consumer_secret, token_secret)

    response = proxied(api, "PUT", "/cards/1", *signed, json={"name": "x=1&y=2"})
    assert response.status_code == 200, response.text
    assert signed_api.last()["valid"] and signed_api.last()["body"] == b'{"name": "x=1&y=2"}'


def test_a_large_binary_body_streams_through_signed(api, signed_api, signed):
    blob = bytes(range(256)) * 64  # beyond PROXY_MAX_REPLAY_BYTES: not held, streamed
    response = proxied(api, "POST", "/attachments", *signed, data=blob,
                       headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    assert signed_api.last()["valid"] and signed_api.last()["body"] == blob


def test_a_streamed_form_body_is_refused_rather_than_signed_wrongly(api, signed_api, signed):
    before = len(signed_api.received)
    form = b"&".join(b"field%d=%s" % (i, b"v" * 40) for i in range(200))  # beyond PROXY_MAX_REPLAY_BYTES
    response = proxied(api, "POST", "/cards", *signed, data=form, headers={"Content-Type": FORM})
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_body" and "PROXY_MAX_REPLAY_BYTES" in error(response)["message"]
    assert len(signed_api.received) == before


def test_every_attempt_has_a_fresh_nonce(api, signed_api, signed):
    path = f"/flaky/{time.monotonic_ns()}"
    response = proxied(api, "GET", path + "?x=1", *signed, headers={"Retries": "1"})
    assert response.status_code == 200, response.text
    attempts = [r for r in signed_api.received if r["target"].startswith("/api" + path)]
    assert len(attempts) == 2 and all(r["valid"] for r in attempts)
    assert attempts[0]["oauth"]["oauth_nonce"] != attempts[1]["oauth"]["oauth_nonce"]
    assert attempts[0]["oauth"]["oauth_signature"] != attempts[1]["oauth"]["oauth_signature"]


def test_a_wrong_consumer_secret_is_refused_by_the_provider(api, signed_api):
    response = proxied(api, "GET", "/boards", *oauth1_connection(api, signed_api, known_secret=False))
    assert response.status_code == 401 and response.json() == {"error": "invalid_signature"}
    assert signed_api.last()["oauth"]["oauth_signature"]


@pytest.mark.parametrize("header", ["Nango-Proxy-Authorization", "Nango-Proxy-authorization"])
def test_the_caller_cannot_replace_the_signature(api, signed_api, signed, header):
    before = len(signed_api.received)
    response = proxied(api, "GET", "/boards", *signed, headers={header: 'OAuth oauth_signature="mine"'})
    assert response.status_code == 400 and error(response)["code"] == "invalid_headers"
    assert len(signed_api.received) == before


def test_no_secret_reaches_the_logs(api, signed_api, signed, system):
    assert proxied(api, "GET", "/boards", *signed).status_code == 200
    logs = "\n".join(p.read_text(errors="replace") for p in system.log_dir.glob("*.log"))
    consumer_secret, token_secret = secrets_of(signed_api, signed_api.last())
    assert consumer_secret not in logs and token_secret not in logs


def test_rsa_sha1_calls_are_signed_with_the_consumers_private_key(api, signed_api):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    consumer_key, token = unique("rsa-ck"), unique("rsa-tok")
    signed_api.consumers[consumer_key] = private.public_key()
    signed_api.tokens[token] = "unused-by-rsa"
    keys = {}
    for name, secret in (("good", pem), ("not-rsa", "a-shared-secret")):
        keys[name] = unique("rsa")
        assert api.post("/integrations", json={"unique_key": keys[name], "provider": "rsa-api", "credentials": {
            "type": "OAUTH1", "client_id": consumer_key, "client_secret": secret}}).status_code == 200
        imported = api.post("/connections", json={"provider_config_key": keys[name], "connection_id": "c1",
                                                  "credentials": {"type": "OAUTH1", "oauth_token": token,
                                                                  "oauth_token_secret": "unused-by-rsa"}})
        assert imported.status_code == 201, imported.text
    response = proxied(api, "POST", "/cards?q=a%20b", keys["good"], "c1", data=b"name=x&pos=top",
                       headers={"Content-Type": FORM})
    assert response.status_code == 200, response.text
    got = signed_api.last()
    assert got["valid"] and got["oauth"]["oauth_signature_method"] == "RSA-SHA1"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert not verify(got["method"], got["target"], got["headers"], got["body"], other, "")
    assert not verify(got["method"], got["target"], got["headers"], b"name=x&pos=bottom", private.public_key(), "")
    refused = proxied(api, "GET", "/cards", keys["not-rsa"], "c1")
    assert (refused.status_code, error(refused)["code"]) == (400, "missing_client_credentials")
