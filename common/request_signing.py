"""OAuth 1.0a (RFC 5849) signatures of proxied calls: every attempt gets a fresh nonce and timestamp
and an `Authorization: OAuth …` header signed with the integration's consumer key and secret and the
connection's token credentials. TBA (NetSuite token-based authentication) is the same protocol
signed with HMAC-SHA256 and with a `realm`, the NetSuite account id, in the header.

authlib supplies the primitives: the protocol parameters, the signature base string, the HMAC-SHA1,
RSA-SHA1 and PLAINTEXT signatures and the header's rendering; for RSA-SHA1 (§3.4.3) the
integration's client secret holds the consumer's RSA private key (PEM) and the token secret is
not used; HMAC-SHA256, which authlib lacks, is the same
keyed digest over the same base string. The parameters to sign are gathered here, not
by `ClientAuth.sign`, which refuses plain-http URLs and query strings outside a narrow character set
(`filter[name]=x`) that upstream APIs accept.

Signed (§3.4.1.3.1): the URL's query parameters (the caller's and the injected ones) and, when the
body is `application/x-www-form-urlencoded` and held in memory, the body's. Other bodies (JSON,
binary, multipart) are not. A streamed form body cannot be read before it is sent, so it is refused
rather than sent under a signature the provider would reject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT, SIGNATURE_RSA_SHA1, ClientAuth
from authlib.oauth1.rfc5849.client_auth import generate_nonce, generate_timestamp
from authlib.oauth1.rfc5849.parameters import prepare_headers
from authlib.oauth1.rfc5849.signature import (
    construct_base_string,
    hmac_sha1_signature,
    plaintext_signature,
    rsa_sha1_signature,
)
from authlib.oauth1.rfc5849.util import escape

from common.errors import ApiError

FORM = "application/x-www-form-urlencoded"
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$")  # also keeps the unescaped realm a plain token
SIGNATURE_HMAC_SHA256 = "HMAC-SHA256"
SIGNATURE_METHODS = {SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT, SIGNATURE_RSA_SHA1}


def refused(message: str, code: str = "invalid_auth_mode") -> ApiError:
    return ApiError(message, code=code, status=400)


def _decoded(raw: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise refused(f"The {where} is not valid UTF-8 once decoded, so the OAuth 1.0a signature cannot cover it",
                      code="invalid_request") from None


def _is_form(headers: Mapping[str, str]) -> bool:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return content_type.split(";", 1)[0].strip().lower() == FORM


def _body_params(headers: Mapping[str, str], body) -> list[tuple[str, str]]:
    """The form body's parameters; none for other bodies; refused for a streamed form body."""
    if not _is_form(headers) or body is None:
        return []
    if not isinstance(body, bytes):
        raise refused("A form-encoded body sent to an OAuth 1.0a provider must be signed, so it must be small "
                      "enough to be held in memory (PROXY_MAX_REPLAY_BYTES) and sent with a Content-Length",
                      code="invalid_body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise refused("The form-encoded body is not UTF-8, so the OAuth 1.0a signature cannot cover it",
                      code="invalid_body") from None
    return _decoded(text, "form-encoded body")


@dataclass(frozen=True)
class OAuth1Signer:
    consumer_key: str
    consumer_secret: str = field(repr=False)
    token: str = field(repr=False)
    token_secret: str = field(repr=False)
    signature_method: str = SIGNATURE_HMAC_SHA1
    realm: str | None = None

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body) -> dict[str, str]:
        """The Authorization header of one attempt (a fresh nonce and timestamp each time)."""
        client = ClientAuth(self.consumer_key, self.consumer_secret, token=self.token,
                            token_secret=self.token_secret, signature_method=self.signature_method)
        protocol = client.get_oauth_params(generate_nonce(), generate_timestamp())
        if self.signature_method == SIGNATURE_PLAINTEXT:
            signature = plaintext_signature(self.consumer_secret, self.token_secret)
        else:
            params = _decoded(urlsplit(url).query, "query string") + _body_params(headers, body) + protocol
            # construct_base_string unescapes every oauth_* value (it expects them as read from a
            # header), so they are handed over escaped.
            params = [(k, escape(v) if k.startswith("oauth_") else v) for k, v in params]
            text = construct_base_string(method, url, params)
            if self.signature_method == SIGNATURE_HMAC_SHA256:
                signature = hmac_sha256_signature(text, self.consumer_secret, self.token_secret)
            elif self.signature_method == SIGNATURE_RSA_SHA1:
                signature = rsa_sha1_signature(text, self.consumer_secret.replace("\\n", "\n"))
            else:
                signature = hmac_sha1_signature(text, self.consumer_secret, self.token_secret)
        header = prepare_headers([*protocol, ("oauth_signature", signature)], realm=self.realm)
        return {"authorization": header["Authorization"]}


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """RFC 5849 §3.4.2 with SHA-256 in place of SHA-1: the key is both secrets, escaped, joined by `&`."""
    key = f"{escape(consumer_secret or '')}&{escape(token_secret or '')}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()


def oauth1_signer(connection: dict) -> OAuth1Signer:
    """The signer of an OAUTH1 connection's calls; refused when something signing needs is missing."""
    consumer = connection.get("oauth1") or {}
    credentials = connection.get("credentials") or {}
    method = str(consumer.get("signature_method") or SIGNATURE_HMAC_SHA1).upper()
    if method not in SIGNATURE_METHODS:
        raise refused(f"Proxied calls signed with the OAuth 1.0a signature method {method} are not supported")
    if not consumer.get("consumer_key") or not consumer.get("consumer_secret"):
        raise refused("The integration has no client id and secret (consumer key and secret) to sign OAuth 1.0a "
                      "requests with", code="missing_client_credentials")
    if not credentials.get("oauth_token") or not credentials.get("oauth_token_secret"):
        raise refused("The connection has no oauth_token and oauth_token_secret to sign OAuth 1.0a requests with",
                      code="invalid_credentials")
    if method == SIGNATURE_RSA_SHA1 and not _is_rsa_private_key(str(consumer["consumer_secret"])):
        raise refused("RSA-SHA1 signing needs the consumer's RSA private key (PEM) as the integration's client "
                      "secret", code="missing_client_credentials")
    return OAuth1Signer(str(consumer["consumer_key"]), str(consumer["consumer_secret"]),
                        str(credentials["oauth_token"]), str(credentials["oauth_token_secret"]), method)


def _is_rsa_private_key(text: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return isinstance(load_pem_private_key(text.replace("\\n", "\n").encode(), password=None),
                          rsa.RSAPrivateKey)
    except (ValueError, TypeError):
        return False


def account_id_problem(provider: dict, connection_config: dict | None) -> str | None:
    """Why a TBA connection's `connection_config.accountId` cannot be used, or None when it can.

    It is the realm the calls are signed with and usually part of the API's host, so it must be a
    plain token matching the catalogue's pattern (the store refuses it at import, auth before it
    sends a verification call)."""
    value = (connection_config or {}).get("accountId")
    schema = (provider.get("connection_config") or {}).get("accountId") or {}
    pattern = schema.get("pattern") if isinstance(schema, dict) else None
    if not isinstance(value, str) or not value:
        return "connection_config.accountId is required for TBA connections"
    if not ACCOUNT_ID.match(value) or (isinstance(pattern, str) and not re.search(pattern, value)):
        description = schema.get("description") if isinstance(schema, dict) else None
        return "connection_config.accountId is not a valid account id" + (
            f" ({description})" if isinstance(description, str) else "")
    return None


def tba_realm(account_id: str) -> str:
    """NetSuite's realm for an account id: upper case, `_` before a sandbox suffix (`123_SB1`).

    The host of the account's REST API needs `-` there instead (`123-sb1.suitetalk…`), and the
    catalogue's templates cannot change a value, so the connection holds the host's form (either
    form is read here).
    """
    return account_id.upper().replace("-", "_")


def tba_signer(connection: dict) -> OAuth1Signer:
    """The signer of a TBA connection's calls: HMAC-SHA256 with the account id as realm."""
    credentials = connection.get("credentials") or {}
    override = credentials.get("config_override") or {}
    consumer = connection.get("oauth1") or {}
    consumer_key = override.get("client_id") or consumer.get("consumer_key")
    consumer_secret = override.get("client_secret") or consumer.get("consumer_secret")
    if not consumer_key or not consumer_secret:
        raise refused("The integration has no client id and secret (consumer key and secret) to sign TBA "
                      "requests with", code="missing_client_credentials")
    if not credentials.get("token_id") or not credentials.get("token_secret"):
        raise refused("The connection has no token_id and token_secret to sign TBA requests with",
                      code="invalid_credentials")
    account_id = (connection.get("connection_config") or {}).get("accountId")
    if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
        raise refused("The connection's config has no valid accountId, the realm of TBA requests",
                      code="invalid_connection_config")
    return OAuth1Signer(str(consumer_key), str(consumer_secret), str(credentials["token_id"]),
                        str(credentials["token_secret"]), SIGNATURE_HMAC_SHA256, tba_realm(account_id))
