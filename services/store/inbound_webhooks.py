"""Webhooks a provider sends to `POST /webhook/:environmentUuid/:providerConfigKey` (no Flask here).

The store takes them because it holds what they need: the integration's webhook secret (sealed)
to check the signature the catalogue declares (`common.webhook_signatures`), and the webhook
outbox, into which the relayed webhook is written in the same transaction as its record. Auth's
delivery loop then sends it to the environment's webhook URL through egress, signed with the
environment's webhook signing key, like every auth webhook: the store never calls out, and a
webhook accepted here is delivered even if auth is down or killed mid-way (at least once).

Every accepted or refused webhook of a known integration is an operation record of kind
`webhook.inbound` whose `detail.result` says what became of it: forwarded (queued for the
customer's backend), refused_signature, no_webhook_url, forwarding_disabled or challenge_answered
(a provider checking the URL, e.g. Slack's `url_verification`, answered with its challenge). Records hold no
body and no secret.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from common import webhook_signatures
from common.errors import ApiError, NotFound
from common.webhook_body import forward_body, serialize
from services.store import connections, integrations, operations
from services.store.context import StoreContext
from services.store.db import database
from services.store.migrations import write_transaction
from services.store.models import Environment, WebhookOutbox, utcnow

log = logging.getLogger("authport.store.inbound_webhooks")
KIND = "webhook.inbound"
# Set by the gateway (gateway/router.py) when the sender is past its failure limit.
UNRECORDED_REFUSALS = "X-Authport-Unrecorded-Refusals"
ACTOR = "provider"


def receive(ctx: StoreContext, environment_uid: str, provider_config_key: str, raw: bytes, content_type: str,
            headers) -> dict:
    """Check, record and queue one provider webhook; what the provider is answered."""
    env = Environment.get_or_none(Environment.uid == environment_uid)
    if env is None:
        raise NotFound("Unknown environment", code="unknown_environment")
    integration = integrations.find(env.id, provider_config_key)
    if integration is None:
        raise NotFound("Provider config not found", code="unknown_provider_config")
    entry = ctx.catalogue.get(integration.provider) or {}
    verified = _check_signature(ctx, env, integration, entry, raw, headers,  # before the body is read
                                record_refusal=not headers.get(UNRECORDED_REFUSALS))
    payload = parse_payload(raw, content_type)
    detail = {"provider": integration.provider, "verified": verified, "bytes": len(raw)}
    challenge = _challenge(entry, payload)
    if challenge is not None:  # the provider checking the URL (Slack's url_verification): answered, not relayed
        with write_transaction(database):
            operations.record(env.id, KIND, actor=ACTOR, provider_config_key=integration.unique_key,
                              detail={**detail, "result": "challenge_answered"})
        return challenge
    connection = _connection_of(env, integration, entry, payload)
    with write_transaction(database):
        if not integration.forward_webhooks:
            result, outbox_id = "forwarding_disabled", None
        elif not ((connection and connection.webhook_url_override) or env.webhook_url):
            result, outbox_id = "no_webhook_url", None
        else:
            result, outbox_id = "forwarded", _enqueue(env, integration, connection, payload)
        operations.record(env.id, KIND, actor=ACTOR, provider_config_key=integration.unique_key,
                          connection_id=connection.connection_id if connection else None,
                          detail={**detail, "result": result, **({"outbox_id": outbox_id} if outbox_id else {})})
    log.info("inbound webhook env=%s integration=%s result=%s", env.id, integration.unique_key, result)
    return {"success": True}


def parse_payload(raw: bytes, content_type: str):
    """The provider's body as the forward webhook's `payload`: JSON, or a form's fields."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            raise ApiError("The webhook body is not valid JSON.", code="invalid_body") from None
    if kind == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ApiError("The webhook body is not valid UTF-8.", code="invalid_body") from None
    raise ApiError("A webhook body must be application/json or application/x-www-form-urlencoded.",
                   code="unsupported_content_type", status=415)


def _check_signature(ctx: StoreContext, env, integration, entry: dict, raw: bytes, headers, *,
                     record_refusal: bool = True) -> bool:
    """True when the provider signs and the signature is good; False when nothing is to be checked
    (the provider does not sign, or the integration has no secret to check with). A refusal is
    recorded unless the gateway says its sender is past the failure limit (`record_refusal`)."""
    scheme = entry.get("webhook_signature")
    if not scheme:
        return False
    field = webhook_signatures.secret_field(scheme)
    secret = integration.unseal(ctx.cipher, f"{field}_enc")
    if not secret:
        return False
    try:
        webhook_signatures.verify(scheme, secret, raw, headers)
    except webhook_signatures.SignatureRefused as refused:
        if record_refusal:
            with write_transaction(database):
                operations.record(env.id, KIND, actor=ACTOR, provider_config_key=integration.unique_key,
                                  success=False, error_code="invalid_signature",
                                  detail={"provider": integration.provider, "verified": False, "bytes": len(raw),
                                          "result": "refused_signature"})
        raise ApiError(str(refused), code="invalid_signature", status=401) from None
    return True


def _challenge(entry: dict, payload) -> dict | None:
    """The catalogue's `webhook_challenge: {when: {key: value}, answer: key}`: a payload holding
    every `when` pair is answered `{answer: payload[answer]}`."""
    declared = entry.get("webhook_challenge")
    if not isinstance(declared, dict) or not isinstance(payload, dict):
        return None
    if not all(payload.get(k) == v for k, v in (declared.get("when") or {}).items()):
        return None
    answer = declared.get("answer")
    return {answer: payload[answer]} if answer in payload and isinstance(payload[answer], str) else None


def _connection_of(env, integration, entry: dict, payload):
    """The connection the catalogue's `webhook_connection_id` (a dotted path into the payload)
    names, when there is a live one so named; else None (the forward carries no connectionId)."""
    path = entry.get("webhook_connection_id")
    value = payload
    for step in str(path).split(".") if path else ():
        value = value.get(step) if isinstance(value, dict) else None
    if not path or value is None or isinstance(value, (dict, list)):
        return None
    found = connections.find(env.id, integration.unique_key, str(value))
    return found[0] if found else None


def _enqueue(env, integration, connection, payload) -> int:
    now = utcnow()
    body = forward_body(integration.provider, integration.unique_key, payload,
                        connection.connection_id if connection else None)
    row = WebhookOutbox.create(
        environment=env.id, event_type="forward", operation="forward", provider_config_key=integration.unique_key,
        connection_id=connection.connection_id if connection else "",
        connection_uid=connection.uid if connection else None, body=serialize(body).decode(), state="pending",
        next_attempt_at=now, created_at=now)
    return row.id
