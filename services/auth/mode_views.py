"""The frontend SDK's other capture routes: `nango.create()` for UNAUTHENTICATED providers
(`/auth/unauthenticated`), and `nango.auth()` with JWT (also `/auth/app-store`), TWO_STEP,
SIGNATURE, BILL and AWS SigV4 (a role ARN, assumed through STS) credentials.

Like the routes of capture_views (and through the same `start` and `save`, so the public-key,
hmac and connect-session rules apply): 200 `{connectionId, providerConfigKey}` or Nango's error
shape; nothing is written unless the credentials are complete and make a token."""

from __future__ import annotations

from flask import Blueprint, request

from common.errors import ApiError
from common.validation import json_body
from services.auth import aws_sts, token_modes
from services.auth.capture_views import save, start
from services.auth.context import ctx

bp = Blueprint("modes", __name__)


@bp.post("/auth/unauthenticated/<path:key>")
def unauthenticated(key: str):
    body = json_body(request, required=False)  # nango.create() sends no body
    if body not in (None, {}):
        raise ApiError("An unauthenticated connection takes no credentials", code="invalid_body", status=400)
    flow = start(key, "NONE")
    return save(flow, {"type": "NONE"})


def capture(key: str, mode: str):
    body = json_body(request)
    flow = start(key, mode)
    fields = token_modes.captured_fields(flow.provider, mode, body)
    return save(flow, token_modes.make(ctx().outbound, flow.provider, mode, fields, flow.connection_config))


@bp.post("/auth/aws-sigv4/<path:key>")
def aws_sigv4(key: str):
    body = json_body(request)
    flow = start(key, "AWS_SIGV4")
    fields = aws_sts.captured_fields(body)
    return save(flow, aws_sts.assume_role(ctx().outbound, flow.provider, fields, flow.integration.get("client_id"),
                                          flow.integration.get("client_secret")))


@bp.post("/auth/jwt/<path:key>")
def jwt(key: str):
    return capture(key, "JWT")


@bp.post("/auth/app-store/<path:key>")
def app_store(key: str):
    """Apple App Store Connect's route in older SDKs; 0.71 sends the same fields to /auth/jwt."""
    return capture(key, "JWT")


@bp.post("/auth/two-step/<path:key>")
def two_step(key: str):
    return capture(key, "TWO_STEP")


@bp.post("/auth/signature/<path:key>")
def signature(key: str):
    return capture(key, "SIGNATURE")


@bp.post("/auth/bill/<path:key>")
def bill(key: str):
    return capture(key, "BILL")
