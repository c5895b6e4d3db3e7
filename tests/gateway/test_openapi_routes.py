"""Every path the code routes is in docs/openapi.yaml, and every documented path is routed.

The routes are read from each process's own Flask url_map (built in process, nothing started),
kept where the gateway would send a public request to that process (`gateway.routing.owner`), plus
the gateway's own routes; internal routes and Flask's default static route are not public."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml

from common.settings import load_settings
from gateway import openapi, routing

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Routed outside a url_map: the proxy's WSGI passage, and the metrics route `common.serve` adds.
OUTSIDE_URL_MAPS = {("GET", "/proxy/{}"), ("POST", "/proxy/{}"), ("PUT", "/proxy/{}"), ("PATCH", "/proxy/{}"),
                    ("DELETE", "/proxy/{}"), ("GET", "/metrics")}


def shape(path: str) -> str:
    """A path with its parameters blanked (`<path:key>` and `{uniqueKey}` alike), no trailing slash."""
    path = re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)
    return path.rstrip("/") or "/"


def public(service: str, rule: str) -> bool:
    if rule.startswith(("/internal/", "/static/")) or rule in ("/healthz", "/readyz"):
        return False
    return routing.owner(rule.split("<", 1)[0].rstrip("/") or "/") == service


@pytest.fixture(scope="module")
def routed(tmp_path_factory) -> set[tuple[str, str]]:
    from gateway.app import create_app as gateway_app
    from services.auth.app import create_app as auth_app
    from services.dashboard.app import create_app as dashboard_app
    from services.proxy.app import create_app as proxy_app
    from services.store.app import create_app as store_app

    data = tmp_path_factory.mktemp("routes")
    settings = load_settings({"INTERNAL_API_KEY": "internal", "NANGO_DATABASE_URL": f"sqlite:///{data}/routes.db",
                              "DATA_DIR": str(data), "NANGO_ENCRYPTION_KEY": base64.b64encode(b"k" * 32).decode()})
    found = set(OUTSIDE_URL_MAPS)
    for service, factory in (("store", store_app), ("auth", auth_app), ("proxy", proxy_app),
                             ("dashboard", dashboard_app), ("gateway", gateway_app)):
        for rule in factory(settings).url_map.iter_rules():
            if rule.rule == "/<path:_path>":  # the gateway's forwarder: what it reaches is listed above
                continue
            if service == "gateway" and not rule.rule.startswith("/static/") or public(service, rule.rule):
                found |= {(method, shape(rule.rule)) for method in rule.methods & METHODS}
    return found


@pytest.fixture(scope="module")
def documented() -> set[tuple[str, str]]:
    document = yaml.load((ROOT / "docs" / "openapi.yaml").read_text(), Loader=openapi.LOADER)
    return {(method.upper(), shape(path)) for path, item in document["paths"].items()
            for method in item if method.upper() in METHODS}


def test_every_routed_path_is_documented(routed, documented):
    assert sorted(routed - documented) == []


def test_every_documented_path_is_routed(routed, documented):
    assert sorted(documented - routed) == []


def test_the_gateway_serves_the_document_it_ships():
    assert (ROOT / "docs" / "openapi.yaml").resolve() == openapi.DOCUMENT.resolve()
    assert openapi.load().startswith(b'{"openapi":"3.1')
