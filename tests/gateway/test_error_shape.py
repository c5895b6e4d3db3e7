"""Every answer is the one JSON error shape, even the ones gunicorn gives before any app runs (a
request line too long, header fields too large, a malformed header or request line, a head not
received in time); a public 503 names no internal address; /readyz tells the public only whether
the gateway is ready, and its dependencies' states only to callers with the internal secret."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

from common.identity import INTERNAL_KEY_HEADER
from common.version import VERSION
from tests.support.system import make_system

MALFORMED = [
    ("request-line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
     "request_line_too_long"),
    ("header-too-large", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "request_headers_too_large"),
    ("too-many-headers", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
     431, "request_headers_too_large"),
    ("header-without-colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "invalid_request"),
    ("header-name-space", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "invalid_request"),
    ("bad-request-line", b"NOT A REQUEST LINE\r\n\r\n", 400, "invalid_request"),
    ("bad-http-version", b"GET /healthz HTTP/9.Z\r\nHost: x\r\n\r\n", 400, "invalid_request"),
    ("bad-method", b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"),
    ("bare-lf-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n", 400, "invalid_request"),
]
PROCESSES = ["gateway", "store", "proxy", "auth"]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("error-shape")
    system = make_system(tmp, f"sqlite:///{tmp / 'authport.db'}", GATEWAY_HEADER_TIMEOUT="2").start()
    yield system
    system.stop()


def port_of(system, process: str) -> int:
    return int(system.env["SERVER_PORT" if process == "gateway" else f"{process.upper()}_PORT"])


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; (everything read, seconds it took)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed with our unread bytes pending: what came before counts
            pass
    return answer, time.monotonic() - started


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


def assert_error_shape(answer: bytes, status: int, code: str) -> dict:
    assert answer, "no answer at all"
    got_status, headers, body = parse(answer)
    assert got_status == status, answer[:300]
    assert headers["content-type"].startswith("application/json"), headers
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert list(error) == ["error"] and set(error["error"]) == {"code", "message"}, error
    assert error["error"]["code"] == code and error["error"]["message"], error
    assert b"<html" not in body.lower()
    return error["error"]


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize(("data", "status", "code"), [pytest.param(d, s, c, id=n) for n, d, s, c in MALFORMED])
def test_what_gunicorn_refuses_is_answered_in_the_json_shape(running, process, data, status, code):
    answer, _ = exchange(port_of(running, process), data)
    assert_error_shape(answer, status, code)


def test_a_request_head_not_received_in_time_is_a_json_408(running):
    answer, took = exchange(port_of(running, "gateway"), b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert_error_shape(answer, 408, "request_timeout")
    assert 1.5 < took < 6


def test_readyz_tells_the_public_only_ready(running):
    public = requests.get(running.url + "/readyz", timeout=10)
    assert public.status_code == 200 and public.json() == {"status": "ready"}
    for header in ({INTERNAL_KEY_HEADER: running.env["INTERNAL_API_KEY"]},
                   {"Authorization": f"Bearer {running.env['INTERNAL_API_KEY']}"}):
        internal = requests.get(running.url + "/readyz", headers=header, timeout=10)
        assert internal.status_code == 200
        assert internal.json() == {"status": "ready", "checks": {"store": "ok", "auth": "ok", "proxy": "ok"},
                                   "version": VERSION}
    wrong = requests.get(running.url + "/readyz", headers={INTERNAL_KEY_HEADER: "nope"}, timeout=10)
    assert wrong.json() == {"status": "ready"}
    store = requests.get(running.service_url("store") + "/readyz", timeout=10)
    assert store.status_code == 200 and store.json() == {"status": "ready"}
    store_internal = requests.get(running.service_url("store") + "/readyz", timeout=10,
                                  headers={INTERNAL_KEY_HEADER: running.env["INTERNAL_API_KEY"]})
    assert store_internal.json() == {"status": "ready", "checks": {"database": "ok"}, "version": VERSION}
    health = requests.get(running.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_a_stopped_store_is_a_503_that_names_no_internal_address(tmp_path):
    system = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}").start()
    try:
        api = system.session()
        assert api.get(system.url + "/connections", timeout=10).status_code == 200
        store = system.procs["store"]
        store.send_signal(signal.SIGINT)
        store.wait(timeout=20)
        internal = {f"127.0.0.1:{port_of(system, p)}" for p in ("store", "auth", "proxy")} | {"http://127.0.0.1"}

        for path in ("/connections", "/integrations", "/proxy/anything"):
            answer = api.get(system.url + path, headers={"Provider-Config-Key": "k", "Connection-Id": "c"},
                             timeout=30)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["code"] == "service_unavailable", answer.text
            assert not [address for address in internal if address in answer.text], answer.text
            assert str(port_of(system, "store")) not in answer.text

        public = requests.get(system.url + "/readyz", timeout=10)
        assert public.status_code == 503
        assert public.json()["error"]["code"] == "service_unavailable"
        assert "store" not in public.text and "127.0.0.1" not in public.text
        internal_view = requests.get(system.url + "/readyz", timeout=10,
                                     headers={INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"]})
        assert internal_view.status_code == 503
        assert internal_view.json()["checks"]["store"].startswith("error")
        assert internal_view.json()["checks"]["auth"] == "ok"
        assert "127.0.0.1" in (system.log_dir / "gateway.log").read_text()  # the log says where; the answer not
    finally:
        system.stop()
