"""OAuth 1.0a (RFC 5849) signatures of proxied calls: every attempt gets a fresh nonce and timestamp
and an `Authorization: OAuth …` header signed with the integration's consumer key and secret and the
connection's token credentials.

authlib supplies the primitives: the protocol parameters, the signature base string, the HMAC-SHA1
and PLAINTEXT signatures and the header's rendering. The parameters to sign are gathered here, not
by `ClientAuth.sign`, which refuses plain-http URLs and query strings outside a narrow character set
(`filter[name]=x`) that upstream APIs accept.

Signed (§3.4.1.3.1): the URL's query parameters (the caller's and the injected ones) and, when the
body is `application/x-www-form-urlencoded` and held in memory, the body's. Other bodies (JSON,
binary, multipart) are not. A streamed form body cannot be read before it is sent, so it is refused
rather than sent under a signature the provider would reject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT, ClientAuth
from authlib.oauth1.rfc5849.client_auth import generate_nonce, generate_timestamp
from authlib.oauth1.rfc5849.parameters import prepare_headers
from authlib.oauth1.rfc5849.signature import construct_base_string, hmac_sha1_signature, plaintext_signature
from authlib.oauth1.rfc5849.util import escape

from common.errors import ApiError

FORM = "application/x-www-form-urlencoded"
SIGNATURE_METHODS = {SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT}


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
            signature = hmac_sha1_signature(construct_base_string(method, url, params),
                                            self.consumer_secret, self.token_secret)
        return {"authorization": prepare_headers([*protocol, ("oauth_signature", signature)])["Authorization"]}


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
    return OAuth1Signer(str(consumer["consumer_key"]), str(consumer["consumer_secret"]),
                        str(credentials["oauth_token"]), str(credentials["oauth_token_secret"]), method)
