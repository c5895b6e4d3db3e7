"""What the auth service's views share for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from common.providers import Catalogue
from common.settings import Settings
from common.store_flows import FlowStore
from services.auth.provider_calls import Outbound
from services.auth.webhooks import WebhookSender


@dataclass(frozen=True)
class AuthContext:
    settings: Settings
    catalogue: Catalogue
    store: FlowStore
    outbound: Outbound
    webhooks: WebhookSender


def ctx() -> AuthContext:
    return current_app.extensions["authport_auth"]
