"""Proxied calls of AWS_SIGV4 connections are signed with AWS Signature V4, checked by botocore's
own signer (used here only as the independent verifier): from what reached the upstream, with the
headers the Authorization header names, botocore computes the signature the call must carry.
`/auth/aws-sigv4` assumes the end user's role through a loopback STS that checks the same way."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.auth.test_browser import browser, page_server  # noqa: F401 - the shared fixtures
from tests.auth.test_connect_sessions import create_session
from tests.proxy.builders import error, gateway, proxied, unique
from tests.support.system import catalogue_system
from tests.support.upstream import Received, Upstream

KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.stop()


STS_KEYS = {"access_key_id": "AKIASTSCALLER", "secret_access_key": "sts-caller-secret"}


class Sts:
    """AssumeRole for the integration's keys (signature checked with botocore), XML as AWS answers."""

    def __init__(self):
        self.lifetime, self.issued, self.calls = 3600, [], []
        sts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got = Received("POST", self.path, dict(self.headers.items()), body, "")
                status, text = sts.answer(got)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, got: Received) -> tuple[int, str]:
        form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
        self.calls.append(form)
        signed = (got.header("authorization") or "").rsplit("Signature=", 1)[-1]
        if not got.header("x-amz-date") or signed != botocore_signature(got, "sts", "us-east-1", STS_KEYS):
            return 403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>"
        if form.get("Action") != "AssumeRole" or not form.get("RoleArn", "").endswith(":role/AuthportAccess"):
            return 403, "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"
        keys = ("ASIA" + secrets.token_hex(6).upper(), secrets.token_hex(20), "session-" + secrets.token_hex(8))
        self.issued.append(keys)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.lifetime))
        return 200, ('<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
                     f"<Credentials><AccessKeyId>{keys[0]}</AccessKeyId><SecretAccessKey>{keys[1]}</SecretAccessKey>"
                     f"<SessionToken>{keys[2]}</SessionToken><Expiration>{expiry}</Expiration></Credentials>"
                     "</AssumeRoleResult></AssumeRoleResponse>")


@pytest.fixture(scope="module")
def sts():
    server = Sts()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def system(tmp_path_factory, upstream, sts):
    catalogue = {"test-aws": {"auth_mode": "AWS_SIGV4", "proxy": {"base_url": upstream.url + "/aws"}},
                 "test-aws-sts": {"auth_mode": "AWS_SIGV4", "token_url": sts.url + "/",
                                  "proxy": {"base_url": upstream.url + "/aws"}}}
    with catalogue_system(tmp_path_factory.mktemp("sigv4"), "postgres", catalogue) as running:
        yield running


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def botocore_signature(received, service: str, region: str, credentials: dict) -> str:
    signed = re.search(r"SignedHeaders=([^,]+)", received.header("authorization")).group(1).split(";")
    request = AWSRequest(method=received.method, url=f"http://{received.header('host')}{received.target}",
                         headers={name: received.header(name) for name in signed}, data=received.body)
    request.context["timestamp"] = received.header("x-amz-date")
    keys = Credentials(credentials["access_key_id"], credentials["secret_access_key"],
                       credentials.get("session_token"))
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(keys, service, region)
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)


def connection(api, credentials: dict, config: dict | None = None, integration_config: dict | None = None):
    key = unique("aws")
    body = {"unique_key": key, "provider": "test-aws"}
    if integration_config:
        body["integration_config"] = integration_config
    assert api.post("/integrations", json=body).status_code == 200
    connection_id = unique("conn")
    answer = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                            "credentials": {"type": "AWS_SIGV4", **credentials},
                                            "connection_config": config or {}})
    assert answer.status_code == 201, answer.text
    return key, connection_id


CASES = [  # (credentials, connection config, integration config, method, endpoint, body, service, region)
    (KEYS, {"service": "execute-api", "region": "eu-west-1"}, None, "GET", "/items/a%20b?b=2&a=1&p=x%2Fy", None,
     "execute-api", "eu-west-1"),
    ({**KEYS, "session_token": "FwoGZXIvYXdzEXAMPLE"}, {"region": "us-west-2"}, {"service": "s3"}, "PUT",
     "/bucket/key%20name.txt", b'{"hello": "world"}', "s3", "us-west-2"),
    (KEYS, {}, {"service": "sqs", "defaultRegion": "ap-south-1"}, "POST", "/", b"Action=ListQueues", "sqs",
     "ap-south-1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[6] for c in CASES])
def test_calls_carry_a_signature_botocore_agrees_with(api, upstream, case):
    credentials, config, integration_config, method, endpoint, body, service, region = case
    key, connection_id = connection(api, credentials, config, integration_config)
    answer = proxied(api, method, endpoint, key, connection_id, data=body,
                     headers={"Content-Type": "application/json"} if body else None)
    assert answer.status_code == 200, answer.text
    got = upstream.last()
    authorization = got.header("authorization")
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{got.header('x-amz-date')[:8]}/"
                                    f"{region}/{service}/aws4_request, SignedHeaders=host;x-amz-content-sha256;")
    assert got.header("x-amz-content-sha256") == hashlib.sha256(got.body).hexdigest()
    assert got.header("x-amz-security-token") == credentials.get("session_token")
    signature = authorization.rsplit("Signature=", 1)[1]
    assert signature == botocore_signature(got, service, region, credentials)
    assert signature != botocore_signature(got, service, region, {**credentials, "secret_access_key": "wrong"})


def test_what_signing_needs_is_refused_when_missing(api):
    key, connection_id = connection(api, KEYS, {"region": "eu-west-1"})  # no service anywhere
    answer = proxied(api, "GET", "/x", key, connection_id)
    assert (answer.status_code, error(answer)["code"]) == (400, "invalid_connection_config")
    key, connection_id = connection(api, KEYS, {"service": "s3", "region": "eu-west-1"})
    answer = proxied(api, "GET", "/x", key, connection_id, headers={"Nango-Proxy-X-Amz-Date": "20200101T000000Z"})
    assert (answer.status_code, error(answer)["code"]) == (400, "invalid_headers")


ROLE = "arn:aws:iam::123456789012:role/AuthportAccess"


def sts_integration(api, **keys) -> str:
    """An integration whose own AWS keys (client id / client secret, the secret stored encrypted) call STS."""
    key = unique("aws-sts")
    credentials = {"client_id": STS_KEYS["access_key_id"], "client_secret": STS_KEYS["secret_access_key"], **keys}
    body = {"unique_key": key, "provider": "test-aws-sts",
            "integration_config": {"service": "execute-api", "defaultRegion": "eu-west-1"}}
    if credentials["client_id"] or credentials["client_secret"]:
        body["credentials"] = {"type": "OAUTH2", **credentials}
    answer = api.post("/integrations", json=body)
    assert answer.status_code == 200, answer.text
    return key


def capture(system, key: str, body) -> requests.Response:
    token = create_session(gateway(system), allowed_integrations=[key])["token"]
    return requests.post(f"{system.url}/auth/aws-sigv4/{key}", json=body, params={"connect_session_token": token},
                         timeout=30)


def test_a_role_is_assumed_through_sts_and_its_keys_sign_calls(system, api, upstream, sts):
    key = sts_integration(api)
    answer = capture(system, key, {"role_arn": ROLE, "region": "us-west-2"})
    assert answer.status_code == 200, answer.text
    connection_id = answer.json()["connectionId"]
    credentials = api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).json()["credentials"]
    access, secret, session = sts.issued[-1]
    assert (credentials["type"], credentials["role_arn"], credentials["region"]) == ("AWS_SIGV4", ROLE, "us-west-2")
    assert (credentials["access_key_id"], credentials["session_token"]) == (access, session)
    assert sts.calls[-1]["RoleArn"] == ROLE and sts.calls[-1]["DurationSeconds"] == "3600"
    assert proxied(api, "GET", "/things?a=1", key, connection_id).status_code == 200
    got = upstream.last()
    assert got.header("x-amz-security-token") == session
    assert got.header("authorization").rsplit("Signature=", 1)[1] == botocore_signature(
        got, "execute-api", "us-west-2", {"access_key_id": access, "secret_access_key": secret,
                                          "session_token": session})


def test_the_role_is_assumed_again_before_its_keys_expire(system, api, sts):
    key = sts_integration(api)
    sts.lifetime = 120  # inside the 15-minute buffer: every read assumes the role again
    try:
        answer = capture(system, key, {"role_arn": ROLE})
        assert answer.status_code == 200, answer.text
        reads = [api.get(f"/connections/{answer.json()['connectionId']}", params={"provider_config_key": key})
                 .json()["credentials"]["access_key_id"] for _ in range(2)]
    finally:
        sts.lifetime = 3600
    assert reads[0] != reads[1] and {r for r in reads} <= {i[0] for i in sts.issued}


REFUSED = [  # (body, integration config override, status, code, field)
    ({"role_arn": "not-an-arn"}, {}, 400, "invalid_body", "role_arn"),
    ({"role_arn": ROLE, "region": "Not A Region"}, {}, 400, "invalid_body", "region"),
    ({"role_arn": ROLE, "extra": "x"}, {}, 400, "invalid_body", "extra"),
    ({"role_arn": "arn:aws:iam::123456789012:role/Other"}, {}, 400, "invalid_credentials", None),
    ({"role_arn": ROLE}, {"client_secret": "wrong"}, 400, "invalid_credentials", None),
    ({"role_arn": ROLE}, {"client_id": "", "client_secret": ""}, 400, "missing_client_credentials", None),
]


def test_bad_captures_name_the_field_and_write_nothing(system, api):
    for body, config, status, code, field in REFUSED:
        key = sts_integration(api, **config)
        answer = capture(system, key, body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (body, answer.text)
        if field:
            assert [e["path"] for e in answer.json()["error"]["errors"]] == [[field]]
        assert api.get("/connections", params={"integrationId": key}).json()["connections"] == []


def test_the_frontend_sdk_sends_a_role_arn_in_chromium(system, api, sts, browser, page_server):  # noqa: F811
    key = sts_integration(api)
    token = create_session(api, allowed_integrations=[key])["token"]
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(page_server.url)
    tab.wait_for_function("window.ready === true")
    outcome = tab.evaluate("""async ([host, token, key, role]) => {
      const { default: Nango } = await import('/sdk/index.js');
      const nango = new Nango({ host, connectSessionToken: token });
      try { return { ok: await nango.auth(key, { credentials: { type: 'AWS_SIGV4', role_arn: role,
                                                                region: 'ap-south-1' } }) }; }
      catch (err) { return { error: { type: err.type, message: err.message } }; }
    }""", [system.url, token, key, ROLE])
    context.close()
    assert "ok" in outcome, outcome
    shown = api.get(f"/connections/{outcome['ok']['connectionId']}", params={"provider_config_key": key}).json()
    assert (shown["credentials"]["role_arn"], shown["credentials"]["region"]) == (ROLE, "ap-south-1")


def test_the_hosted_connect_page_asks_for_the_role_and_an_optional_region(system, api, sts, browser):  # noqa: F811
    key = sts_integration(api)
    link = create_session(api, allowed_integrations=[key], end_user={"id": "aws-page"})["connect_link"]
    context = browser.new_context()
    tab = context.new_page()
    try:
        tab.goto(link)  # one integration allowed: the page opens on its form
        tab.wait_for_selector("#field-role_arn")
        assert tab.inner_text("label[for=field-role_arn]") == "IAM role ARN"
        assert "optional" in tab.inner_text("label[for=field-region]")
        tab.fill("#field-role_arn", "not-an-arn")
        tab.click("#connect-submit")
        tab.wait_for_selector("#alert:not([hidden])")  # the server's 400 naming role_arn, shown on the page
        tab.fill("#field-role_arn", ROLE)
        tab.click("#connect-submit")
        tab.wait_for_selector("#success-view:not([hidden])")
    finally:
        context.close()
    [made] = api.get("/connections", params={"endUserId": "aws-page"}).json()["connections"]
    shown = api.get(f"/connections/{made['connection_id']}", params={"provider_config_key": key}).json()
    assert (shown["credentials"]["type"], shown["credentials"]["role_arn"]) == ("AWS_SIGV4", ROLE)
    assert "region" not in shown["credentials"] and sts.calls[-1]["RoleArn"] == ROLE
