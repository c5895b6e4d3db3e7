"""A real OAuth 2 authorization server for the tests, built from authlib's server components and
served on 127.0.0.1 by werkzeug in a thread.

- `GET /authorize` (also `/t/<tenant>/authorize`, for templated provider URLs) consents at once,
  as a user who clicked "Allow"; `deny=1` answers `access_denied` instead, and `tamper_state=1`
  sends the browser back with a state that is not the one it was given.
- `POST /token` (also `/t/<tenant>/token`): authorization code (PKCE S256 checked when a
  challenge was sent), client credentials, and refresh tokens that rotate on each use
  (`rotate_refresh_tokens = False`: none is sent back); `token_delay` slows it down.
- `GET /verify`: 200 for a known API key (`Authorization: Bearer <key>`) or basic user, else 401.
- `POST /two-step/token` (a TWO_STEP provider, Jamf-like): a known basic user gets
  `{token, expires}` (ISO, `two_step_lifetime` seconds from now), anyone else 401.
- `POST /bill/login` (Bill.com-like): JSON `{username, password, organizationId, devKey}` of a
  known basic user, with `bill_org` and `bill_dev_key`, gets `{sessionId, userId}`, else 400.
Every token it issues starts with `canary-`, so a test can look for them in logs.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.support.system import free_port


@dataclass
class Client:
    client_id: str
    client_secret: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_redirect_uri(self, redirect_uri):
        return urlsplit(redirect_uri).hostname in ("127.0.0.1", "localhost")

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret or "", self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token", "client_credentials")


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    user: str = "end-user"

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return None

    def get_auth_time(self):
        return None


@dataclass
class Token:
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float = field(default_factory=time.time)
    revoked: bool = False

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return 3600

    def is_expired(self):
        return False

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return "end-user"


class OAuthServer:
    """The server and what it saw: `authorize_requests`, `token_requests` (grant types), tokens."""

    def __init__(self, expires_in: int = 3600):
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback, for the tests only
        self.port = free_port()
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.api_keys: set[str] = set()
        self.basic_users: dict[str, str] = {}
        self.authorize_requests: list[dict] = []
        self.token_requests: list[str] = []
        self.issued_codes: list[str] = []
        self.rotate_refresh_tokens = True  # False: refreshes answer without a new refresh token
        self.token_delay = 0.0  # seconds the token endpoint waits before answering
        self.two_step_lifetime = 3600
        self.two_step_tokens: list[str] = []
        self.bill_org, self.bill_dev_key = "org-1", "dev-key-1"
        self.bill_sessions: list[str] = []
        self.lock = threading.Lock()
        self.app = self._build(expires_in)
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_client(self, client_id: str | None = None) -> Client:
        client = Client(client_id or f"client-{secrets.token_hex(4)}", f"secret-{secrets.token_hex(8)}")
        self.clients[client.client_id] = client
        return client

    def issued_access_tokens(self) -> list[str]:
        return [t.access_token for t in self.tokens.values()]

    def issued_refresh_tokens(self) -> list[str]:
        return [t.refresh_token for t in self.tokens.values() if t.refresh_token]

    def _build(self, expires_in: int) -> Flask:
        app = Flask("test-oauth-server")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": expires_in, "refresh_token": expires_in,
                                                 "client_credentials": expires_in}
        app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = lambda *a, **k: "canary-at-" + secrets.token_hex(16)
        app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = lambda *a, **k: "canary-rt-" + secrets.token_hex(16)
        server = AuthorizationServer(app, query_client=self.clients.get, save_token=self._save_token)
        server.register_grant(self._code_grant(), [CodeChallenge(required=False)])
        server.register_grant(self._refresh_grant())
        server.register_grant(ClientCredentials)
        self._routes(app, server)
        return app

    def _save_token(self, token: dict, req) -> None:
        with self.lock:
            self.tokens[token["access_token"]] = Token(req.client.client_id, token["access_token"],
                                                       token.get("refresh_token"), token.get("scope", ""))

    def _code_grant(self):
        outer = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                outer.issued_codes.append(code)
                outer.codes[code] = Code(code, req.client.client_id, req.payload.redirect_uri, req.payload.scope or "",
                                         data.get("code_challenge"), data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                found = outer.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                outer.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        return CodeGrant

    def _refresh_grant(self):
        outer = self

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            @property
            def INCLUDE_NEW_REFRESH_TOKEN(self):  # noqa: N802 - authlib's name
                return outer.rotate_refresh_tokens

            def authenticate_refresh_token(self, refresh_token):
                for token in outer.tokens.values():
                    if token.refresh_token == refresh_token and not token.revoked:
                        return token
                return None

            def authenticate_user(self, credential):
                return credential.get_user()

            def revoke_old_credential(self, credential):
                if outer.rotate_refresh_tokens:
                    credential.revoked = True

        return RefreshGrant

    def _routes(self, app: Flask, server: AuthorizationServer) -> None:
        @app.get("/authorize")
        @app.get("/t/<tenant>/authorize")
        def authorize(tenant: str | None = None):
            self.authorize_requests.append({**request.args.to_dict(), "_tenant": tenant})
            grant_user = None if request.args.get("deny") == "1" else "end-user"
            grant = server.get_consent_grant(end_user=grant_user)
            response = server.create_authorization_response(grant=grant, grant_user=grant_user)
            if request.args.get("tamper_state") == "1" and response.status_code == 302:
                response.headers["Location"] = _with_query(response.headers["Location"], state="tampered-state")
            return response

        @app.post("/token")
        @app.post("/t/<tenant>/token")
        def token(tenant: str | None = None):
            with self.lock:
                self.token_requests.append(request.form.get("grant_type", ""))
            time.sleep(self.token_delay)
            return server.create_token_response()

        @app.get("/verify")
        def verify():
            auth = request.authorization
            scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
            known_key = scheme.lower() == "bearer" and value in self.api_keys
            known_user = auth is not None and auth.type == "basic" and auth.username in self.basic_users and (
                self.basic_users[auth.username] == auth.password)
            if known_key or known_user:
                return jsonify({"ok": True})
            return jsonify({"error": "unauthorized"}), 401

        @app.post("/two-step/token")
        def two_step_token():
            auth = request.authorization
            if auth is None or self.basic_users.get(auth.username or "") != auth.password:
                return jsonify({"error": "unauthorized"}), 401
            token = "canary-2s-" + secrets.token_hex(8)
            self.two_step_tokens.append(token)
            expires = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + self.two_step_lifetime))
            return jsonify({"token": token, "expires": expires})

        @app.post("/bill/login")
        def bill_login():
            body = request.get_json(silent=True) or {}
            known = self.basic_users.get(body.get("username") or "") == body.get("password") and (
                body.get("organizationId") == self.bill_org and body.get("devKey") == self.bill_dev_key)
            if not known:
                return jsonify({"response_status": 1, "message": "Invalid login"}), 400
            session = "canary-bill-" + secrets.token_hex(8)
            self.bill_sessions.append(session)
            return jsonify({"sessionId": session, "userId": "user-1", "organizationId": self.bill_org})

    def start(self) -> OAuthServer:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def _with_query(url: str, **values: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(values)
    return urlunsplit(parts._replace(query=urlencode(query)))
