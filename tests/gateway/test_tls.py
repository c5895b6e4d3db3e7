"""TLS at the gateway (TLS_CERT_FILE / TLS_KEY_FILE): HTTPS only, TLS 1.2 at least, the websocket
over wss, NANGO_SERVER_URL defaulting to https; a half or broken pair stops the gateway in one line.
The certificate comes from a certificate authority the test makes."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest
import requests

from tests.auth.popup import Socket
from tests.support.system import ROOT, free_port, make_system
from tests.support.tls import TestCA


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("tls")
    ca = TestCA(tmp_dir / "ca")
    cert, key = ca.issue(dns=("localhost",), ips=("127.0.0.1",))
    # Every process gets the pair, as compose or k8s would set it; only the gateway reads the files.
    system = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", TLS_CERT_FILE=str(cert),
                         TLS_KEY_FILE=str(key), NANGO_SERVER_URL=None).start()
    try:
        yield {"url": system.url, "port": int(system.env["SERVER_PORT"]), "ca": str(ca.pem_path), "system": system,
               "env": system.env, "tmp": tmp_dir, "other_key": ca.issue(dns=("other",))[1]}
    finally:
        system.stop()


def test_the_api_answers_over_https_with_links_in_https(tls):
    api = requests.Session()
    api.trust_env = False
    api.verify = tls["ca"]
    api.headers["Authorization"] = f"Bearer {tls['system'].dev_key}"
    made = api.post(tls["url"] + "/integrations", json={"unique_key": "gh-tls", "provider": "github"})
    assert made.status_code == 200, made.text
    logo = api.get(tls["url"] + "/integrations/gh-tls").json()["data"]["logo"]
    assert logo == f"https://localhost:{tls['port']}/images/template-logos/github.svg"


def test_plain_http_is_not_served(tls):
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls['port']}/healthz", timeout=5)


# The test offers TLS 1.0/1.1 on purpose, to see them refused; Python warns that they are deprecated.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused_and_1_2_is_accepted(tls):
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(tls["ca"])
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1: the server must say no
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        Socket(tls["url"], tls=old)
    current = ssl.create_default_context(cafile=tls["ca"])
    current.maximum_version = ssl.TLSVersion.TLSv1_2
    socket_ = Socket(tls["url"], tls=current)  # the frontend SDK's websocket, over wss
    try:
        assert socket_.sock.version() == "TLSv1.2" and socket_.client_id
    finally:
        socket_.close()


@pytest.mark.parametrize("pair", ["cert only", "key only", "mismatched", "missing file"])
def test_a_bad_pair_stops_the_gateway_in_one_line(tls, pair):
    env = dict(tls["env"], SERVER_PORT=str(free_port()))
    if pair == "cert only":
        env.pop("TLS_KEY_FILE")
    elif pair == "key only":
        env.pop("TLS_CERT_FILE")
    elif pair == "mismatched":
        env["TLS_KEY_FILE"] = str(tls["other_key"])
    else:
        env["TLS_CERT_FILE"] = str(tls["tmp"] / "nowhere.pem")
    done = subprocess.run([sys.executable, "-m", "gateway"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "TLS_" in lines[0] and "Traceback" not in done.stderr
