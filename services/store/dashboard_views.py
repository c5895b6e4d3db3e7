"""What the dashboard needs from the store beyond the public routes it calls like any caller:

    GET /internal/dashboard/environments   the default account's environments, each with the
                                           identity the dashboard sends to act in it

The dashboard then calls the public routes (/integrations, /connections, /logs, …) with those
identity headers and `X-Authport-Actor: dashboard:<user>` (honoured by `actors`, internal callers
only), so its changes go through the same code, validation and records as the API's.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from common.identity import Identity
from services.store import keys
from services.store.bootstrap import DEFAULT_ACCOUNT
from services.store.models import Account, Environment

bp = Blueprint("dashboard_internal", __name__, url_prefix="/internal/dashboard")


@bp.get("/environments")
def environments():
    account = Account.get_or_none(Account.name == DEFAULT_ACCOUNT)
    if account is None:
        return jsonify({"data": []})
    rows = Environment.select().where(Environment.account == account).order_by(Environment.id)
    # key_id 0: the dashboard acts with no API key; its actor header names who it is.
    return jsonify({"data": [
        {"name": env.name, "identity": Identity(
            account_id=account.id, environment_id=env.id, environment=env.name, plan=account.plan,
            rate_limit=keys.plan_limit(account), key_kind="secret", key_id=0).to_dict()}
        for env in rows
    ]})
