"""How a provider signs the webhooks it sends, as the catalogue declares it, and the check of one.

An entry of the catalogue may carry (an Authport extension of Nango's format):

    webhook_signature:
        header: X-Slack-Signature          # where the signature is
        encoding: hex                      # hex | base64
        prefix: 'v0='                      # stripped from the header value (optional)
        signed: 'v0:{timestamp}:{body}'    # what is signed; default '{body}' (the raw body)
        timestamp_header: X-Slack-Request-Timestamp   # where {timestamp} is (optional)
        parts: {timestamp: t, signature: v1}          # or: the header is 'k=v,k=v' (Stripe's form)
        tolerance_seconds: 300             # refuse a timestamp further from now (needs a timestamp)
        secret: webhook_secret             # the integration's field keyed with: webhook_secret | client_secret

The algorithm is HMAC-SHA256, the one every provider declared so far uses. A scheme is checked
when the catalogue loads (`check`), so a bad one stops the start rather than every webhook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

KEYS = {"header", "encoding", "prefix", "signed", "timestamp_header", "parts", "tolerance_seconds", "secret",
        "algorithm"}
SECRETS = ("webhook_secret", "client_secret")


class SignatureRefused(Exception):
    """The webhook's signature is missing, malformed, stale or wrong; the message says which."""


def check(scheme: object) -> str | None:
    """What is wrong with a declared scheme (one line), or None when it can be used."""
    if not isinstance(scheme, dict):
        return "webhook_signature must be a mapping"
    unknown = sorted(set(scheme) - KEYS)
    if unknown:
        return f"webhook_signature has unknown key(s): {', '.join(unknown)}"
    if not isinstance(scheme.get("header"), str) or not scheme["header"]:
        return "webhook_signature.header must name a header"
    if scheme.get("algorithm", "hmac-sha256") != "hmac-sha256":
        return "webhook_signature.algorithm must be hmac-sha256"
    if scheme.get("encoding", "hex") not in ("hex", "base64"):
        return "webhook_signature.encoding must be hex or base64"
    if scheme.get("secret", "webhook_secret") not in SECRETS:
        return f"webhook_signature.secret must be one of {', '.join(SECRETS)}"
    signed = scheme.get("signed", "{body}")
    if not isinstance(signed, str) or "{body}" not in signed:
        return "webhook_signature.signed must contain {body}"
    parts = scheme.get("parts")
    if parts is not None and (not isinstance(parts, dict) or "signature" not in parts):
        return "webhook_signature.parts must map signature (and timestamp) to the header's keys"
    has_timestamp = bool(scheme.get("timestamp_header")) or bool(parts and parts.get("timestamp"))
    if ("{timestamp}" in signed or "tolerance_seconds" in scheme) and not has_timestamp:
        return "webhook_signature: a {timestamp} or a tolerance needs timestamp_header or parts.timestamp"
    return None


def secret_field(scheme: dict) -> str:
    return scheme.get("secret", "webhook_secret")


def verify(scheme: dict, secret: str, raw: bytes, headers, now: float | None = None) -> None:
    """Return when `raw` carries a good signature by `secret`; else raise SignatureRefused."""
    value = _header(headers, scheme["header"])
    timestamp = _header(headers, scheme["timestamp_header"]) if scheme.get("timestamp_header") else None
    parts = scheme.get("parts")
    if parts:
        pairs = [item.strip().partition("=") for item in value.split(",")]
        candidates = [v for k, _, v in pairs if k == parts["signature"] and v]
        if parts.get("timestamp"):
            timestamp = next((v for k, _, v in pairs if k == parts["timestamp"]), None)
    else:
        candidates = [value]
    if "tolerance_seconds" in scheme:
        _fresh(timestamp, float(scheme["tolerance_seconds"]), time.time() if now is None else now)
    before, _, after = scheme.get("signed", "{body}").partition("{body}")
    signed = before.replace("{timestamp}", timestamp or "").encode() + raw + after.replace(
        "{timestamp}", timestamp or "").encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    prefix = scheme.get("prefix", "")
    for candidate in candidates:
        if prefix and not candidate.startswith(prefix):
            continue
        given = _decode(candidate[len(prefix):], scheme.get("encoding", "hex"))
        if given is not None and hmac.compare_digest(given, expected):
            return
    raise SignatureRefused(f"The signature in {scheme['header']} does not match the body.")


def _header(headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureRefused(f"The request has no {name} header.")
    return value.strip()


def _fresh(timestamp: str | None, tolerance: float, now: float) -> None:
    try:
        sent = float(timestamp or "")
    except ValueError:
        raise SignatureRefused("The webhook's timestamp is missing or not a number.") from None
    if abs(now - sent) > tolerance:
        raise SignatureRefused(f"The webhook's timestamp is more than {tolerance:g} seconds from now.")


def _decode(text: str, encoding: str) -> bytes | None:
    try:
        return bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
