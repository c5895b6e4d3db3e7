"""The server's root: a browser gets a page saying what the server is; the frontend SDK's websocket
still answers there (or at NANGO_SERVER_WEBSOCKETS_PATH), because only upgrade requests go to it."""

from __future__ import annotations

import pytest
import requests

from tests.auth.popup import Socket
from tests.support.system import make_system


@pytest.fixture(scope="module", params=["/", "/ws"])
def root_system(request, tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("root")
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}",
                          NANGO_SERVER_WEBSOCKETS_PATH=request.param).start()
    yield running, request.param
    running.stop()


def browser_get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", **headers})


def test_a_browser_at_the_root_gets_a_page_about_the_server(root_system):
    system, _ = root_system
    answer = browser_get(system.url + "/")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    assert "<h1>Authport</h1>" in answer.text and "Nango" in answer.text and system.url in answer.text
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert system.dev_key not in answer.text
    assert requests.head(system.url + "/").status_code == 200


def test_a_request_upgrading_to_something_else_is_not_a_websocket(root_system):
    system, _ = root_system
    answer = browser_get(system.url + "/", Connection="Upgrade", Upgrade="h2c")
    assert answer.status_code == 200 and "<h1>Authport</h1>" in answer.text


def test_the_websocket_still_answers_at_its_path(root_system):
    system, path = root_system
    first, second = Socket(system.url, path=path), Socket(system.url, path=path)
    try:
        assert first.client_id != second.client_id
    finally:
        first.close()
        second.close()


def test_a_plain_get_of_a_separate_websocket_path_is_a_json_404(root_system):
    system, path = root_system
    if path == "/":
        pytest.skip("the websocket shares the root")
    answer = browser_get(system.url + path)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
