"""The catalogue's `webhook_signature` schemes: a bad declaration stops the catalogue from loading
with one line naming it, and the `parts` form (Stripe's `t=…,v1=…` header) is checked as declared."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from common import webhook_signatures
from common.providers import Catalogue, CatalogueError

STRIPE = {"header": "Stripe-Signature", "signed": "{timestamp}.{body}", "parts": {"timestamp": "t", "signature": "v1"},
          "tolerance_seconds": 300}


@pytest.mark.parametrize("scheme,problem", [
    ({"encoding": "hex"}, "header must name a header"),
    ({"header": "X-Sig", "algorithm": "md5"}, "algorithm must be hmac-sha256"),
    ({"header": "X-Sig", "encoding": "base32"}, "encoding must be hex or base64"),
    ({"header": "X-Sig", "signed": "{timestamp}"}, "signed must contain {body}"),
    ({"header": "X-Sig", "signed": "{timestamp}.{body}"}, "needs timestamp_header or parts.timestamp"),
    ({"header": "X-Sig", "secret": "api_key"}, "secret must be one of"),
    ({"header": "X-Sig", "colour": "red"}, "unknown key(s): colour"),
])
def test_a_bad_scheme_stops_the_catalogue(tmp_path, scheme, problem):
    path = tmp_path / "providers.yaml"
    path.write_text("hooks:\n    auth_mode: API_KEY\n    webhook_signature: " + repr(scheme).replace("'", '"') + "\n")
    with pytest.raises(CatalogueError, match="provider 'hooks': webhook_signature") as refused:
        Catalogue.load(str(path))
    assert problem in str(refused.value)


def stripe_header(secret: str, body: bytes, stamp: int, extra: str = "") -> str:
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={'0' * 64},v1={signature}{extra}"  # a rolled secret's v1 beside the good one


def test_a_header_of_parts_is_checked_with_its_timestamp():
    body, now = b'{"id":"evt_1"}', 1_800_000_000
    good = {"Stripe-Signature": stripe_header("whsec_x", body, now, ",v0=ignored")}
    webhook_signatures.verify(STRIPE, "whsec_x", body, good, now=now + 10)
    for headers, at in (({"Stripe-Signature": stripe_header("whsec_y", body, now)}, now),  # other secret
                        (good, now + 301),  # stale
                        ({"Stripe-Signature": f"t={now}"}, now),  # no v1
                        ({}, now)):
        with pytest.raises(webhook_signatures.SignatureRefused):
            webhook_signatures.verify(STRIPE, "whsec_x", body, headers, now=at)
    with pytest.raises(webhook_signatures.SignatureRefused):
        webhook_signatures.verify(STRIPE, "whsec_x", body + b" ", good, now=now)
