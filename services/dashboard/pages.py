"""Rendering a page of one environment: the switcher, the section, a notice or an error."""

from __future__ import annotations

from flask import g, redirect, render_template, request

from services.dashboard.context import environments

NOTICES = {
    "integration_created": "The integration was created.",
    "integration_updated": "The integration was saved.",
    "integration_deleted": "The integration and its connections were deleted.",
    "connection_deleted": "The connection was deleted; it can be restored for 31 days.",
    "connection_restored": "The connection was restored.",
    "connection_purged": "The connection was purged for good.",
    "key_revoked": "The key was revoked; the API refuses it from now on.",
    "webhook_saved": "The webhook URL was saved.",
    "variable_saved": "The variable was saved.",
    "variable_deleted": "The variable was deleted.",
}

def render(template: str, section: str, status: int = 200, **data):
    """A page of the current environment (`g.environment`), answered with `status`."""
    names = [name for name, _ in environments()]
    notice = NOTICES.get(request.args.get("done", ""))
    body = render_template(f"dashboard/{template}", env=g.environment.environment, env_names=names,
                           section=section, notice=notice, **data)
    return body, status


def done(env: str, section: str, notice: str, **params):
    """After a change: back to a page (303, so a reload does not repeat it), naming what was done."""
    query = "&".join(f"{k}={v}" for k, v in {"done": notice, **params}.items())
    return redirect(f"/dashboard/{env}/{section}?{query}", code=303)
