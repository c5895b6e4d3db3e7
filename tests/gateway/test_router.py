"""Where the gateway's catch-all route sends a request, decided without the network."""

import pytest

from common.wsgi import METHODS, raw_target
from gateway.fastpath import METHODS as FAST_METHODS
from gateway.router import UNSUPPORTED, destination


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/connections/u1", "GET", ("store", None)),
    ("/integrations/gh/functions/x", "GET", (UNSUPPORTED, "Functions")),
    ("/integrations/quickstart", "POST", (UNSUPPORTED, "Quickstart integrations")),
    ("/integrations/quickstart", "GET", ("store", None)),
    ("/sync/trigger", "POST", (UNSUPPORTED, "Syncs")),
    ("/connect/sessions", "POST", ("auth", None)),
    ("/proxy/repos", "PROPFIND", ("proxy", None)),
    ("/dashboard/keys", "POST", ("dashboard", None)),
    ("/connections/../internal/credentials", "GET", (None, None)),
    ("/connections/./u1", "GET", (None, None)),
    ("/sync/../connections", "GET", (None, None)),  # a dot segment wins over an unsupported area
    ("/nowhere", "GET", (None, None)),
    ("/connectionsx", "GET", (None, None)),
])
def test_destination(path, method, expected):
    assert destination(path, method) == expected


def test_fast_path_takes_every_public_method_but_the_preflight():
    assert FAST_METHODS == METHODS - {"OPTIONS"} and {"PROPFIND", "REPORT"} <= FAST_METHODS


@pytest.mark.parametrize(("environ", "expected"), [
    ({"RAW_URI": "/connections/u1%3Fa%3Db?x=1"}, "/connections/u1%3Fa%3Db?x=1"),
    ({"REQUEST_URI": "/proxy/a%2Fb"}, "/proxy/a%2Fb"),
    ({"RAW_URI": "/a#frag", "PATH_INFO": "/a#frag", "QUERY_STRING": ""}, "/a%23frag"),
    ({"PATH_INFO": "/caf\xc3\xa9 x", "QUERY_STRING": "q=1"}, "/caf%C3%A9%20x?q=1"),
])
def test_raw_target(environ, expected):
    assert raw_target(environ) == expected
