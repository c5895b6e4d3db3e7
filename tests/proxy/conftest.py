"""The running system with a test catalogue whose providers call upstream servers on loopback.

The upstream on 127.0.0.1 is allowed explicitly (`OUTBOUND_ALLOW_CIDRS=127.0.0.1/32`); the
sentinel on 127.0.0.9 is not, and must never see a connection. Outbound calls leave from
127.0.0.2 and 127.0.0.3 (`EGRESS_SOURCE_IPS`).
"""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.test_node_sdk import sdk, sdk_dir  # noqa: F401 - the SDK driver fixtures, reused here
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import free_port, make_system
from tests.support.upstream import Upstream

SOURCE_IPS = ("127.0.0.2", "127.0.0.3")


def catalogue(upstream: str, sentinel: str, closed: str) -> dict:
    port = upstream.rsplit(":", 1)[1]
    return {
        "echo-oauth": {"auth_mode": "OAUTH2", "authorization_url": "https://example.invalid/auth",
                       "token_url": "https://example.invalid/token",
                       "proxy": {"base_url": upstream, "headers": {"accept": "application/vnd.echo+json"},
                                 "retry": {"after": ["x-wait-seconds"]}}},
        "echo-key": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream + "/api",
                                                       "headers": {"x-api-key": "${apiKey}"}}},
        "echo-query": {"auth_mode": "API_KEY", "proxy": {"base_url": upstream, "query": {"api_key": "${apiKey}"}}},
        "echo-basic": {"auth_mode": "BASIC", "proxy": {"base_url": upstream}},
        "echo-cc": {"auth_mode": "OAUTH2_CC", "token_url": "https://example.invalid/token",
                    "proxy": {"base_url": upstream, "headers": {"x-tenant": "${connectionConfig.tenant}"}}},
        "echo-templated": {"auth_mode": "API_KEY",
                           "proxy": {"base_url": f"http://${{connectionConfig.host}}:{port}/t/${{connectionConfig.region}}",
                                     "headers": {"authorization": "Key ${credentials.apiKey}"}},
                           "connection_config": {"region": {"type": "string", "enum": ["eu", "us"]}}},
        "echo-instance": {"auth_mode": "API_KEY", "proxy": {"base_url": "${connectionConfig.instance_url}",
                                                            "headers": {"x-api-key": "${apiKey}"}}},
        "sentinel": {"auth_mode": "API_KEY", "proxy": {"base_url": sentinel, "headers": {"x-api-key": "${apiKey}"}}},
        "closed": {"auth_mode": "API_KEY", "proxy": {"base_url": closed, "headers": {"x-api-key": "${apiKey}"}}},
    }


@pytest.fixture(scope="module")
def upstream():
    with Upstream("127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def sentinel():
    with Upstream("127.0.0.9") as server:
        yield server


def start(tmp_dir, backend: str, upstream: Upstream, sentinel: Upstream, **env):
    path = tmp_dir / "providers.yaml"
    closed = f"http://127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump(catalogue(upstream.url, sentinel.url, closed)))
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if backend == "sqlite" else create_postgres_database()
    settings = {"PROVIDERS_FILE": str(path), "DEFAULT_PLAN": "growth", "EGRESS_SOURCE_IPS": ",".join(SOURCE_IPS),
                "PROXY_READ_TIMEOUT": "2", "PROXY_TOTAL_TIMEOUT": "8", "PROXY_RETRY_BACKOFF": "0.2",
                "PROXY_MAX_RESPONSE_BYTES": "8MB", "PROXY_MAX_DECOMPRESSED_BYTES": "4MB", **env}
    return make_system(tmp_dir, url, **settings).start(), url


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def system(request, tmp_path_factory, upstream, sentinel):
    """The four processes, allowed to reach the upstream (127.0.0.1) and nothing else on loopback."""
    tmp_dir = tmp_path_factory.mktemp(f"proxy-{request.param}")
    running, url = start(tmp_dir, request.param, upstream, sentinel, OUTBOUND_ALLOW_CIDRS="127.0.0.1/32")
    yield running
    running.stop()
    if request.param == "postgres":
        drop_postgres_database(url)
