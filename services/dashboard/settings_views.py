"""Environment settings: secret keys (create, rotate, revoke; a new value shown once, in the answer
to the form that made it), public key rotation, the webhook URL, environment variables (names
listed, a value shown only on an explicit reveal, which is recorded), the webhook signing key's
rotation (the new key shown once), callback URL and egress IPs."""

from __future__ import annotations

from flask import Blueprint, g, request

from common.dashboard_client import path_of
from services.dashboard.context import act, actor_user, ctx, environment
from services.dashboard.pages import done, render

bp = Blueprint("settings", __name__, url_prefix="/dashboard")


def settings_page(status: int = 200, *, error: str | None = None, shown_key: dict | None = None,
                  revealed: dict | None = None, webhook_value: str | None = None, variable_name: str = ""):
    keys = act("GET", "/environment/keys")
    webhook = act("GET", "/environment/webhook")
    variables = act("GET", "/environment-variables")
    names = [v["name"] for v in variables.body] if variables.ok and isinstance(variables.body, list) else []
    url = (webhook.data or {}).get("url") if webhook.ok else None
    settings = ctx().settings
    return render("settings.html", "settings", status, keys=keys.data or [] if keys.ok else [],
                  webhook_url=url if webhook_value is None else webhook_value, variables=names,
                  shown_key=shown_key, revealed=revealed, variable_name=variable_name,
                  callback_url=settings.callback_url,
                  egress_ips=list(settings.EGRESS_PUBLIC_IPS), error=error or (None if keys.ok else keys.message))


@bp.get("/<env>/settings")
def settings(env: str):
    environment(env)
    return settings_page()


def key_answer(answer):
    """The page answering a key change: the new value shown once, or the store's message."""
    if not answer.ok:
        return settings_page(answer.status if answer.status < 500 else 502, error=answer.message)
    return settings_page(shown_key=answer.data)


@bp.post("/<env>/settings/keys")
def create_key(env: str):
    environment(env)
    return key_answer(act("POST", "/environment/keys", {"name": request.form.get("name", "").strip()}))


def unchanged_since_shown(kind: str, name: str) -> bool:
    """Is the key the form was rendered with still the active one? The form names its created_at,
    so a form sent twice (a reload of the answer) does not rotate again a key the operator just got."""
    keys = act("GET", "/environment/keys")
    active = [k for k in (keys.data or []) if k["kind"] == kind and k["name"] == name and not k["revoked_at"]]
    return bool(active) and active[0]["created_at"] == request.form.get("created_at")


STALE = "This key changed since the page was shown (it was rotated already?); nothing was done."


@bp.post("/<env>/settings/keys/<name>/rotate")
def rotate_key(env: str, name: str):
    environment(env)
    if not unchanged_since_shown("secret", name):
        return settings_page(409, error=STALE)
    return key_answer(act("POST", path_of("environment", "keys", name, "rotate")))


@bp.post("/<env>/settings/keys/<name>/revoke")
def revoke_key(env: str, name: str):
    environment(env)
    answer = act("DELETE", path_of("environment", "keys", name))
    if not answer.ok:
        return settings_page(answer.status, error=answer.message)
    return done(env, "settings", "key_revoked")


@bp.post("/<env>/settings/public-key/rotate")
def rotate_public_key(env: str):
    environment(env)
    if not unchanged_since_shown("public", "default"):
        return settings_page(409, error=STALE)
    return key_answer(act("POST", "/environment/public-key/rotate"))


@bp.post("/<env>/settings/webhook")
def set_webhook(env: str):
    environment(env)
    url = request.form.get("url", "").strip()
    answer = act("PATCH", "/environment/webhook", {"url": url or None})
    if not answer.ok:
        return settings_page(answer.status, error=answer.message, webhook_value=url)
    return done(env, "settings", "webhook_saved")


@bp.post("/<env>/settings/webhook-signing-key/rotate")
def rotate_webhook_signing_key(env: str):
    """A new signing key for this environment's webhooks, shown this once; the old one stops signing."""
    environment(env)
    if request.form.get("confirm", "") != "rotate":
        return settings_page(400, error="Type rotate to confirm: your backend must verify with the new key at once.")
    answer = act("POST", "/environment/webhook-signing-key/rotate")
    if not answer.ok:
        return settings_page(answer.status if answer.status < 500 else 502, error=answer.message)
    return settings_page(shown_key={"kind": "webhook signing", "name": env,
                                    "key": answer.data["webhook_signing_key"]})


@bp.post("/<env>/settings/variables")
def set_variable(env: str):
    environment(env)
    name = request.form.get("name", "").strip()
    answer = act("PUT", path_of("internal", "dashboard", "environment-variables", name or "_"),
                 {"value": request.form.get("value", "")}) if name else None
    if answer is None or not answer.ok:
        return settings_page(400 if answer is None else answer.status,
                             error="A variable needs a name." if answer is None else answer.message,
                             variable_name=name)
    return done(env, "settings", "variable_saved")


@bp.post("/<env>/settings/variables/<name>/delete")
def delete_variable(env: str, name: str):
    environment(env)
    answer = act("DELETE", path_of("internal", "dashboard", "environment-variables", name))
    if not answer.ok:
        return settings_page(answer.status, error=answer.message)
    return done(env, "settings", "variable_deleted")


@bp.post("/<env>/settings/variables/<name>/reveal")
def reveal_variable(env: str, name: str):
    identity = environment(env)
    variables = act("GET", "/environment-variables")
    found = [v for v in variables.body if v["name"] == name] if variables.ok else []
    if not found:
        return settings_page(404, error=f"No variable {name} in {env}.")
    ctx().store.record(identity.environment_id, "secret_revealed", actor_user(g.user), revealed=f"env_var:{name}")
    return settings_page(revealed={"name": name, "value": found[0]["value"]})
