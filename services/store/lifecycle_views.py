"""Restore and purge-now routes (Authport extensions, secret key only; reached through the gateway):

    POST /connections/<id>/restore?provider_config_key=K   a connection deleted < 31 days ago is live again
    POST /connections/<id>/purge?provider_config_key=K     that connection, live or deleted, gone for good
    POST /connections/purge {"end_user_id": "…"}           every connection of one end user (GDPR erasure)

POST, not DELETE, for the purge of one connection: a connection id may contain "/", so
`DELETE /connections/<id>/purge` would also be the plain delete of a connection named "<id>/purge".
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, jsonify, request
from pydantic import StringConstraints

from common.validation import Strict, json_body, query, validate
from services.store import actors, formatters, lifecycle
from services.store.context import ctx
from services.store.schemas import ConnectionKeyQuery
from services.store.views import connection_key, env_id, require_secret_key

bp = Blueprint("lifecycle", __name__)


class EndUserPurge(Strict):
    end_user_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]


@bp.before_request
def _secret_key_only():
    request.get_data(cache=True)  # read the body even when refusing, so the connection stays usable
    require_secret_key()


@bp.post("/connections/<path:connection_id>/restore")
def restore_connection(connection_id: str):
    connection_id = connection_key(connection_id)
    q = query(ConnectionKeyQuery, request.args)
    conn = lifecycle.restore(ctx(), env_id(), q.provider_config_key, connection_id, actor=actors.current_actor(),
                             request_id=actors.request_id())
    return jsonify({"success": True, "connection": formatters.connection_item(
        conn, conn.integration.unique_key, conn.integration.provider)})


@bp.post("/connections/<path:connection_id>/purge")
def purge_connection(connection_id: str):
    connection_id = connection_key(connection_id)
    q = query(ConnectionKeyQuery, request.args)
    lifecycle.purge_connection(ctx(), env_id(), q.provider_config_key, connection_id, actor=actors.current_actor(),
                               request_id=actors.request_id())
    return jsonify({"success": True, "purged": {"connections": 1}})


@bp.post("/connections/purge")
def purge_end_user():
    body = validate(EndUserPurge, json_body(request))
    counts = lifecycle.purge_end_user(ctx(), env_id(), body.end_user_id, actor=actors.current_actor(),
                                      request_id=actors.request_id())
    return jsonify({"success": True, "purged": counts})
