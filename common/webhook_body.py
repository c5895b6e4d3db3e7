"""The body of the auth webhook Nango sends to the customer's backend (`type: 'auth'`).

Shared because two processes hold it: the store writes it to the webhook outbox in the
transaction of the event it reports, and auth signs and sends those exact bytes. The body is
compact JSON with sorted keys and JS-style escaping, so that `JSON.stringify` of the parsed body
gives the same bytes back (the legacy signature is checked that way). It carries no credential:
ids, the environment's name, tags, the end user and, for a failure, an error code and message.
"""

from __future__ import annotations

import json


def serialize(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def auth_body(report: dict, operation: str, success: bool, error: dict | None = None) -> dict:
    """Nango's auth webhook body for a connection the store described in `report`."""
    body = {"from": "nango", "type": "auth", "connectionId": report["connection_id"],
            "providerConfigKey": report["provider_config_key"], "authMode": report["auth_mode"],
            "provider": report["provider"], "environment": report["environment"], "operation": operation,
            "success": success}
    if report.get("tags"):
        body["tags"] = report["tags"]
    if report.get("end_user"):
        body["endUser"] = report["end_user"]
    if error is not None:
        body["error"] = {"type": str(error.get("type") or "unknown"),
                         "description": str(error.get("description") or "")}
    return body


def forward_body(provider: str, provider_config_key: str, payload, connection_id: str | None = None) -> dict:
    """Nango's `forward` webhook: a provider's webhook relayed to the customer's backend."""
    body = {"from": provider, "type": "forward", "providerConfigKey": provider_config_key, "payload": payload}
    if connection_id is not None:
        body["connectionId"] = connection_id
    return body
