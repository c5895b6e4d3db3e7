"""A real OAuth 1.0a (RFC 5849) provider for the tests, built on authlib's Flask OAuth 1 server and
served on 127.0.0.1 by werkzeug in a thread. authlib verifies every signature (HMAC-SHA1).

- `POST /request_token`: temporary credentials for a signed request with `oauth_callback`.
- `GET /authorize?oauth_token=…`: consents at once and sends the browser to the callback with
  `oauth_token` and `oauth_verifier`; `deny=1` sends it back with `error=access_denied` instead.
- `POST /access_token`: token credentials for a signed request with the verifier.
Every token and secret it issues starts with `canary1-`, so a test can look for them in logs.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from authlib.integrations.flask_oauth1 import AuthorizationServer
from authlib.oauth1 import ClientMixin, TemporaryCredential
from authlib.oauth1.errors import OAuth1Error
from flask import Flask, request
from werkzeug.serving import make_server

from tests.support.system import free_port


def _canary_pair() -> dict[str, str]:
    return {"oauth_token": "canary1-t-" + secrets.token_hex(12),
            "oauth_token_secret": "canary1-s-" + secrets.token_hex(16)}


@dataclass
class Consumer(ClientMixin):
    client_id: str
    client_secret: str

    def get_default_redirect_uri(self):
        return None

    def get_client_secret(self):
        return self.client_secret

    def get_rsa_public_key(self):
        return None


class OAuth1Server:
    """The server and what it saw: `authorize_requests`, `request_token_params`, the issued tokens."""

    def __init__(self):
        self.port = free_port()
        self.consumers: dict[str, Consumer] = {}
        self.temporary: dict[str, TemporaryCredential] = {}
        self.tokens: dict[str, str] = {}  # access oauth_token -> oauth_token_secret
        self.nonces: set[tuple] = set()
        self.authorize_requests: list[dict] = []
        self.request_token_params: list[dict] = []
        self.lock = threading.Lock()
        self.app = self._build()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_consumer(self) -> Consumer:
        consumer = Consumer(f"consumer-{secrets.token_hex(4)}", f"csecret-{secrets.token_hex(8)}")
        self.consumers[consumer.client_id] = consumer
        return consumer

    def issued(self) -> dict[str, str]:
        return dict(self.tokens)

    def _build(self) -> Flask:
        app = Flask("test-oauth1-server")
        server = AuthorizationServer(app, query_client=self.consumers.get, token_generator=_canary_pair)
        server.register_hook("exists_nonce", self._exists_nonce)
        server.register_hook("create_temporary_credential", self._create_temporary)
        server.register_hook("get_temporary_credential", lambda token: self.temporary.get(token))
        server.register_hook("delete_temporary_credential", lambda token: self.temporary.pop(token, None))
        server.register_hook("create_authorization_verifier", self._create_verifier)
        server.register_hook("create_token_credential", self._create_token)

        @app.post("/request_token")
        def request_token():
            self.request_token_params.append(request.form.to_dict())
            return server.create_temporary_credentials_response()

        @app.get("/authorize")
        def authorize():
            self.authorize_requests.append(request.args.to_dict())
            try:
                return server.create_authorization_response(
                    grant_user=None if request.args.get("deny") == "1" else "end-user")
            except OAuth1Error as error:
                return server.handle_error_response(error)

        @app.post("/access_token")
        def access_token():
            return server.create_token_response()

        return app

    def _exists_nonce(self, nonce, timestamp, client_id, token) -> bool:
        key = (nonce, timestamp, client_id, token)
        with self.lock:
            if key in self.nonces:
                return True
            self.nonces.add(key)
            return False

    def _create_temporary(self, token: dict, client_id: str, redirect_uri: str) -> TemporaryCredential:
        credential = TemporaryCredential(token, client_id=client_id, oauth_callback=redirect_uri,
                                         created_at=time.time())
        self.temporary[token["oauth_token"]] = credential
        return credential

    @staticmethod
    def _create_verifier(credential: TemporaryCredential, user, verifier: str) -> None:
        credential["user_id"] = user
        credential["oauth_verifier"] = verifier

    def _create_token(self, token: dict, temporary: TemporaryCredential) -> TemporaryCredential:
        with self.lock:
            self.tokens[token["oauth_token"]] = token["oauth_token_secret"]
        return TemporaryCredential(token)

    def start(self) -> OAuth1Server:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
