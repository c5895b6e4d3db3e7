"""The popup flow's websocket across gateway processes: the socket is held by one gateway, the
callback lands on another, and Redis pub/sub carries the result over (NANGO_REDIS_URL set)."""

from __future__ import annotations

import pytest

from tests.api.builders import gateway
from tests.auth.conftest import write_catalogue
from tests.auth.popup import Socket, run_popup
from tests.auth.test_connect_sessions import create_session
from tests.auth.test_oauth_flow import oauth_integration
from tests.support.redis_server import RedisServer
from tests.support.system import make_system


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory, oauth_server):
    tmp_dir = tmp_path_factory.mktemp("fanout")
    redis_server = RedisServer(tmp_dir).start()
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", DEFAULT_PLAN="growth",
                          PROVIDERS_FILE=write_catalogue(tmp_dir, oauth_server), OUTBOUND_ALLOW_CIDRS="127.0.0.0/8",
                          NANGO_REDIS_URL=redis_server.url, NANGO_SERVER_WEBSOCKETS_PATH="/ws").start()
    second = running.add_gateway("gateway-2")
    yield running, second
    running.stop()
    redis_server.stop()


def test_result_reaches_the_socket_held_by_another_gateway(two_gateways, oauth_server):
    system, second_url = two_gateways
    api = gateway(system)
    key = oauth_integration(api, oauth_server)
    token = create_session(api, allowed_integrations=[key])["token"]
    socket = Socket(second_url, path="/ws")
    answer, _ = run_popup(system.url, key, connect_session_token=token, ws_client_id=socket.client_id)
    assert answer.status_code == 200, answer.text
    result = socket.result()
    assert result["message_type"] == "success" and result["provider_config_key"] == key
    # An error travels the same way.
    socket = Socket(second_url, path="/ws")
    answer, _ = run_popup(system.url, key, connect_session_token=token, ws_client_id=socket.client_id,
                          **{"authorization_params[deny]": "1"})
    assert answer.status_code == 400
    assert socket.result()["error_type"] == "callback_err"
