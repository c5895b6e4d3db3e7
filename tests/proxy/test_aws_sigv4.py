"""Proxied calls of AWS_SIGV4 connections are signed with AWS Signature V4, checked by botocore's
own signer (used here only as the independent verifier): from what reached the upstream, with the
headers the Authorization header names, botocore computes the signature the call must carry."""

from __future__ import annotations

import hashlib
import re

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.proxy.builders import error, gateway, proxied, unique
from tests.support.system import catalogue_system
from tests.support.upstream import Upstream

KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory, upstream):
    catalogue = {"test-aws": {"auth_mode": "AWS_SIGV4", "proxy": {"base_url": upstream.url + "/aws"}}}
    with catalogue_system(tmp_path_factory.mktemp("sigv4"), "postgres", catalogue) as running:
        yield gateway(running)


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
