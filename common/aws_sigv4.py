"""AWS Signature Version 4 of proxied calls (AWS_SIGV4 connections), per AWS's documented algorithm
("Create a signed AWS API request"): a canonical request (method, URI, sorted query, the signed
headers, the payload's SHA-256), the string to sign over it, and an HMAC-SHA256 chain from the
secret key through date, region and service. Signed headers: `host`, `x-amz-date`,
`x-amz-content-sha256` and, with temporary credentials, `x-amz-security-token`.

The connection holds `access_key_id`, `secret_access_key` and optionally `session_token`; the
service and region come from its `connection_config` (`service`, `region`), else the
integration's `integration_config` (`service`, `defaultRegion`). S3 paths are encoded once and a
streamed S3 body is sent as `UNSIGNED-PAYLOAD`; other services get their paths encoded twice, as
AWS requires, and a body that cannot be hashed before it is sent is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

from common.errors import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
NAME = re.compile(r"^[a-z0-9-]{1,64}$")
DEFAULT_PORTS = {"http": 80, "https": 443}


def refused(message: str, code: str = "invalid_credentials") -> ApiError:
    return ApiError(message, code=code, status=400)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, DEFAULT_PORTS.get(parts.scheme)) else f"{host}:{parts.port}"


@dataclass(frozen=True)
class SigV4Signer:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    service: str
    session_token: str | None = field(default=None, repr=False)

    def canonical_uri(self, path: str) -> str:
        path = path or "/"
        return path if self.service == "s3" else quote(path, safe="/~")

    def canonical_query(self, query: str) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        return "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))

    def payload_hash(self, body) -> str:
        if body is None or isinstance(body, bytes):
            return hashlib.sha256(body or b"").hexdigest()
        if self.service == "s3":
            return "UNSIGNED-PAYLOAD"
        raise refused("A body sent to an AWS service must be signed, so it must be small enough to be held in "
                      "memory (PROXY_MAX_REPLAY_BYTES) and sent with a Content-Length", code="invalid_body")

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body, now: datetime | None = None
                 ) -> dict[str, str]:
        """The headers that sign one attempt (a fresh x-amz-date each time)."""
        now = now or datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        parts = urlsplit(url)
        payload = self.payload_hash(body)
        signed = {"host": _host(url), "x-amz-content-sha256": payload, "x-amz-date": stamp}
        if self.session_token:
            signed["x-amz-security-token"] = self.session_token
        names = sorted(signed)
        canonical = "\n".join([
            method.upper(), self.canonical_uri(parts.path), self.canonical_query(parts.query),
            "".join(f"{n}:{' '.join(signed[n].split())}\n" for n in names), ";".join(names), payload])
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = b"AWS4" + self.secret_access_key.encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out = {n: v for n, v in signed.items() if n != "host"}
        out["authorization"] = (f"{ALGORITHM} Credential={self.access_key_id}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
        return out


def sigv4_signer(connection: dict) -> SigV4Signer:
    """The signer of an AWS_SIGV4 connection's calls; refused when something signing needs is missing."""
    credentials = connection.get("credentials") or {}
    config = connection.get("connection_config") or {}
    integration = connection.get("integration_config") or {}
    if not credentials.get("access_key_id") or not credentials.get("secret_access_key"):
        raise refused("The connection has no access_key_id and secret_access_key to sign AWS requests with")
    service = config.get("service") or integration.get("service")
    region = config.get("region") or credentials.get("region") or integration.get("defaultRegion")
    for name, value in (("service", service), ("region", region)):
        if not isinstance(value, str) or not NAME.match(value):
            raise refused(f"The connection config (or the integration config) has no valid AWS {name} to sign with",
                          code="invalid_connection_config")
    return SigV4Signer(str(credentials["access_key_id"]), str(credentials["secret_access_key"]), region, service,
                       credentials.get("session_token") or None)
