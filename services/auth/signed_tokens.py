"""Tokens Authport signs itself from a connection's stored credentials: JWTs (auth mode JWT, e.g.
Apple's App Store Connect API) and WSSE UsernameTokens (auth mode SIGNATURE, e.g. Emarsys).

A JWT follows the catalogue's `token` entry: `signing_key` (a template naming the credential that
holds the key), `header` and `payload` (templates; a claim whose value is missing is left out),
and `expires_in_ms` (default 5 minutes): `iat` and `exp` are set here. `${fingerprint(…)}` gives
the public key fingerprint of a PEM private key (`SHA256:` + base64 of the DER key's SHA-256). The algorithm is the
header's `alg` (HS256/384/512 with a shared secret, RS256/384/512 with an RSA key, ES256/384/512
with an EC key, both PEM). Signed with `cryptography`'s primitives (RFC 7515 §3, RFC 7518 §3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from services.auth import templates

DEFAULT_LIFETIME_MS = 5 * 60 * 1000
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
DIGESTS = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
EC_SIZES = {"256": 32, "384": 48, "512": 66}
FINGERPRINT = re.compile(r"\$\{fingerprint\(([^()]*)\)\}")  # its argument is a template
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


class TokenProblem(Exception):
    """The credentials cannot make a token; `field` names the credential at fault, if one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _filled(value, values: dict):
    """A header or payload value with its templates filled; None when one names a missing value."""
    try:
        if isinstance(value, str):
            return templates.fill(FINGERPRINT.sub(lambda m: _fingerprint(templates.fill(m.group(1), values)), value),
                                  values)
        if isinstance(value, list):
            items = [_filled(v, values) for v in value]
            return None if any(i is None for i in items) else items
        if isinstance(value, dict):
            return {k: v for k, v in ((k, _filled(v, values)) for k, v in value.items()) if v is not None}
    except templates.MissingValue:
        return None
    return value


def _fingerprint(key_text: str) -> str:
    """`SHA256:` + base64 of the SHA-256 of the public key's DER (Snowflake's key-pair JWT `iss`)."""
    try:
        key = serialization.load_pem_private_key(_pem(key_text), password=None)
    except (ValueError, TypeError):
        raise TokenProblem("The private key is not a PEM private key") from None
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def _key_field(template: str) -> str | None:
    match = templates.PLACEHOLDER.search(template or "")
    return match.group(1).strip().removeprefix("credentials.").split(".")[0] if match else None


def _sign(alg: str, key_text: str, signing_input: bytes, field: str | None) -> bytes:
    family, size = alg[:2].upper(), alg[2:]
    if size not in HASHES or family not in ("HS", "RS", "ES"):
        raise TokenProblem(f"The provider's JWT algorithm {alg} is not supported")
    if family == "HS":
        return hmac.new(key_text.encode(), signing_input, DIGESTS[size]).digest()
    pem = _pem(key_text)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise TokenProblem(f"{field or 'The signing key'} is not a PEM private key", field) from None
    if family == "RS" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), HASHES[size]())
    if family == "ES" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == {
            "256": 256, "384": 384, "512": 521}[size]:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(HASHES[size]())))
        width = EC_SIZES[size]
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")  # JWS wants r || s, not DER
    raise TokenProblem(f"{field or 'The signing key'} is not a key for {alg}", field)


def _pem(text: str) -> bytes:
    """A PEM as pasted: with `\\n` escapes, or flattened onto one line by a form field."""
    text = text.replace("\\n", "\n").strip()
    match = PEM.fullmatch(text)
    if match:
        body = re.sub(r"\s+", "", match.group(2))
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        text = "\n".join([f"-----BEGIN {match.group(1)}-----", *lines, f"-----END {match.group(1)}-----"])
    return text.encode()


def sign_jwt(provider: dict, credentials: dict, connection_config: dict, now: datetime | None = None) -> dict:
    """{token, expires_at} of a JWT made per the provider's `token` entry."""
    spec = provider.get("token") if isinstance(provider.get("token"), dict) else {}
    values = templates.template_values(connection_config, credentials)
    key_template = str(spec.get("signing_key") or "${credentials.privateKey}")
    field = _key_field(key_template)
    try:
        key_text = str(templates.fill(key_template, values))
    except templates.MissingValue:
        raise TokenProblem(f"{field or 'The signing key'} is required", field) from None
    header = _filled(spec.get("header") or {}, values)
    alg = str(header.get("alg") or "HS256")
    header = {**header, "alg": alg, "typ": header.get("typ", "JWT")}
    now = now or datetime.now(UTC)
    lifetime = timedelta(milliseconds=int(spec.get("expires_in_ms") or DEFAULT_LIFETIME_MS))
    payload = {**_filled(spec.get("payload") or {}, values), "iat": int(now.timestamp()),
               "exp": int((now + lifetime).timestamp())}
    signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, payload)).encode()
    signature = _sign(alg, key_text, signing_input, field)
    return {"token": signing_input.decode() + "." + b64url(signature), "expires_at": _iso(now + lifetime)}


def wsse_token(provider: dict, credentials: dict, now: datetime | None = None) -> dict:
    """{token, expires_at}: a WSSE UsernameToken as Emarsys documents it: PasswordDigest is the
    base64 of the hex SHA-1 of nonce + Created + secret."""
    now = now or datetime.now(UTC)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = secrets.token_hex(16)
    digest = hashlib.sha1(f"{nonce}{created}{credentials['password']}".encode()).hexdigest()  # noqa: S324
    password_digest = base64.b64encode(digest.encode()).decode()
    token = (f'UsernameToken Username="{credentials["username"]}", PasswordDigest="{password_digest}", '
             f'Nonce="{nonce}", Created="{created}"')
    spec = provider.get("token") if isinstance(provider.get("token"), dict) else {}
    lifetime = timedelta(milliseconds=int(spec.get("expires_in_ms") or DEFAULT_LIFETIME_MS))
    return {"token": token, "expires_at": _iso(now + lifetime)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
