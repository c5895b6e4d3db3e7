"""What the dashboard's views share for the life of the process, and per request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import abort, current_app, g

from common.dashboard_client import Answer, DashboardClient, DashboardStore
from common.identity import Identity
from common.settings import Settings
from services.dashboard.access import Gate
from services.dashboard.csrf import Csrf

ACTOR_UNSAFE = re.compile(r"[^A-Za-z0-9@._:+-]")


@dataclass(frozen=True)
class DashboardContext:
    settings: Settings
    store: DashboardStore
    auth: DashboardClient
    gate: Gate
    csrf: Csrf


def ctx() -> DashboardContext:
    return current_app.extensions["authport_dashboard"]


def actor_user(user: str) -> str:
    """The user as the store's records name it (`dashboard:<user>`, a plain token)."""
    return (ACTOR_UNSAFE.sub("_", user) or "_")[:128]


def environments() -> list[tuple[str, Identity]]:
    if "environments" not in g:
        g.environments = ctx().store.environments()
    return g.environments


def environment(name: str) -> Identity:
    """The identity to act in environment `name` (404 when the account has none of that name)."""
    for env_name, identity in environments():
        if env_name == name:
            g.environment = identity
            return identity
    abort(404)


def act(method: str, path: str, payload=None, *, service: str = "store") -> Answer:
    """Call a public route of the store (or auth) in the current environment as the signed-in user."""
    client = ctx().auth if service == "auth" else ctx().store
    return client.act(g.environment, actor_user(g.user), method, path, payload)
