"""Public routes the store owns (reached through the gateway): integrations, connections,
providers, environment variables."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request

from common.errors import ApiError, NotFound
from common.fields import CONNECTION_ID_PATTERN, KEY_PATTERN
from common.httpapp import current_identity
from common.identity import require_secret
from common.validation import StrictQuery, json_body, query, uri_param, validate
from services.store import (
    actors,
    connections,
    credentials,
    envvars,
    flows,
    formatters,
    integrations,
    notify,
    read_cache,
)
from services.store.context import ctx
from services.store.read_records import READ_DETAIL, recorder
from services.store.schemas import (
    ConnectionGetQuery,
    ConnectionImport,
    ConnectionKeyQuery,
    ConnectionListQuery,
    ConnectionPatch,
    IntegrationCreate,
    IntegrationQuery,
    IntegrationUpdate,
    MetadataBody,
)

bp = Blueprint("public", __name__)
UNIQUE_KEY = re.compile(KEY_PATTERN)
CONNECTION_ID = re.compile(CONNECTION_ID_PATTERN)


@bp.before_request
def _read_body():
    # Read every body (at most MAX_CONTENT_LENGTH) even when the answer will not need it: a body
    # left unread makes the server close the connection, and the caller's next request on it fail.
    request.get_data(cache=True)


def integration_key(value: str) -> str:
    return uri_param("uniqueKey", value, UNIQUE_KEY)


def connection_key(value: str) -> str:
    return uri_param("connectionId", value, CONNECTION_ID)


class NoQuery(StrictQuery):
    pass


def env_id() -> int:
    return current_identity().environment_id


def require_secret_key() -> None:
    require_secret(current_identity())


@bp.get("/integrations")
def list_integrations():
    query(NoQuery, request.args)
    records = integrations.list_all(env_id())
    if current_identity().key_kind == "connect_session":  # only what the session may connect
        allowed = flows.get_session(current_identity().key_id).allowed_integrations
        records = [r for r in records if allowed is None or r.unique_key in allowed]
    return jsonify({"data": [integrations.present(ctx(), r) for r in records]})


@bp.post("/integrations")
def create_integration():
    require_secret_key()
    body = validate(IntegrationCreate, json_body(request))
    record = integrations.create(ctx(), env_id(), body)
    actors.record("integration.created", provider_config_key=record.unique_key, detail={"provider": record.provider})
    return jsonify({"data": integrations.present(ctx(), record)})


@bp.get("/integrations/<path:unique_key>")
def get_integration(unique_key: str):
    unique_key = integration_key(unique_key)
    q = query(IntegrationQuery, request.args)
    include = set([q.include] if isinstance(q.include, str) else (q.include or []))
    if "credentials" in include and current_identity().key_kind != "secret":
        raise ApiError("Credentials can only be read with a secret key", code="invalid_permissions", status=403)
    record = integrations.get(env_id(), unique_key)
    return jsonify({"data": integrations.present(ctx(), record, include)})


@bp.patch("/integrations/<path:unique_key>")
def update_integration(unique_key: str):
    unique_key = integration_key(unique_key)
    require_secret_key()
    body = validate(IntegrationUpdate, json_body(request))
    record = integrations.update(ctx(), env_id(), unique_key, body)
    notify.connection_changed(ctx().settings)
    actors.record("integration.updated", provider_config_key=record.unique_key,
                  detail={"fields": sorted(body.model_dump(exclude_none=True))})
    return jsonify({"data": integrations.present(ctx(), record)})


@bp.delete("/integrations/<path:unique_key>")
def delete_integration(unique_key: str):
    unique_key = integration_key(unique_key)
    require_secret_key()
    integrations.delete(env_id(), unique_key)
    notify.connection_changed(ctx().settings)  # every connection of it is deleted too
    actors.record("integration.deleted", provider_config_key=unique_key)
    return jsonify({"success": True})


@bp.post("/connections")
@bp.post("/connection")
def import_connection():
    require_secret_key()
    body = validate(ConnectionImport, json_body(request))
    conn, integration = connections.import_connection(ctx(), env_id(), body)
    replaced = sorted(name for name in ("connection_config", "metadata", "tags", "end_user", "webhook_url_override")
                      if getattr(body, name) is not None)
    # A new row has created_at == updated_at (one `now`); a replaced one keeps its first created_at.
    actors.connection_event("created" if conn.created_at == conn.updated_at else "updated", integration.unique_key,
                            conn.connection_id, via="import", fields=["credentials", *replaced])
    creds = credentials.of(ctx(), conn)
    return jsonify(connections.present_full(conn, integration, creds, include_refresh=True, suffix="Z")), 201


@bp.get("/connections")
@bp.get("/connection")
def list_connections():
    require_secret_key()
    q = query(ConnectionListQuery, request.args)
    return jsonify({"connections": connections.list_connections(env_id(), q)})


@bp.get("/connections/<path:connection_id>")
@bp.get("/connection/<path:connection_id>")
def get_connection(connection_id: str):
    connection_id = connection_key(connection_id)
    require_secret_key()
    q = query(ConnectionGetQuery, request.args)
    found = connections.get_for_read(ctx(), env_id(), q.provider_config_key, connection_id,
                                     force_refresh=q.force_refresh)
    recorder.add(env_id(), q.provider_config_key, connection_id, *actors.current(), actors.request_id(),
                 READ_DETAIL[q.refresh_token, q.force_refresh])

    def present(shown: bool) -> dict:
        return connections.present_full(found.conn, found.integration, found.credentials, include_refresh=shown,
                                        suffix="Z")

    if not (q.force_refresh or q.refresh_github_app_jwt_token or found.refreshed):
        read_cache.offer(request.environ, _encoded, current_identity(), found.conn,
                         found.integration, found.credentials, ctx().catalogue.get(found.integration.provider),
                         present)
    return jsonify(present(q.refresh_token))


def _encoded(answer: dict) -> bytes:
    """The body jsonify sends for `answer`."""
    return current_app.json.response(answer).get_data()


@bp.delete("/connections/<path:connection_id>")
@bp.delete("/connection/<path:connection_id>")
def delete_connection(connection_id: str):
    connection_id = connection_key(connection_id)
    require_secret_key()
    q = query(ConnectionKeyQuery, request.args)
    connections.delete(env_id(), q.provider_config_key, connection_id)
    notify.connection_changed(ctx().settings, env_id(), q.provider_config_key, connection_id)
    actors.connection_event("deleted", q.provider_config_key, connection_id)
    return jsonify({"success": True})


@bp.patch("/connections/<path:connection_id>")
def patch_connection(connection_id: str):
    connection_id = connection_key(connection_id)
    require_secret_key()
    q = query(ConnectionKeyQuery, request.args)
    body = validate(ConnectionPatch, json_body(request))
    connections.patch(env_id(), q.provider_config_key, connection_id, body)
    notify.connection_changed(ctx().settings, env_id(), q.provider_config_key, connection_id)  # cached reads
    actors.connection_event("updated", q.provider_config_key, connection_id,
                            fields=sorted(body.model_dump(exclude_none=True)))
    return jsonify({"success": True})


def _metadata(merge: bool):
    require_secret_key()
    raw = json_body(request)
    body = validate(MetadataBody, raw)
    ids = body.connection_id if isinstance(body.connection_id, list) else [body.connection_id]
    connections.set_metadata(env_id(), body.provider_config_key, ids, body.metadata, merge=merge)
    notify.connection_changed(ctx().settings, env_id(), body.provider_config_key, *ids)  # cached reads
    for connection_id in ids:
        actors.connection_event("updated", body.provider_config_key, connection_id, fields=["metadata"])
    return jsonify(raw), (200 if merge else 201)


@bp.post("/connections/metadata")
@bp.post("/connection/metadata")
def set_metadata():
    return _metadata(merge=False)


@bp.patch("/connections/metadata")
@bp.patch("/connection/metadata")
def update_metadata():
    return _metadata(merge=True)


def _legacy_metadata(connection_id: str, merge: bool):
    connection_id = connection_key(connection_id)
    require_secret_key()
    key = request.headers.get("Provider-Config-Key")
    if not key:
        raise ApiError(code="invalid_headers", status=400, message=None, errors=[{
            "code": "invalid_type", "message": "Invalid input: expected string, received undefined",
            "path": ["provider-config-key"]}])
    metadata = json_body(request)
    if not isinstance(metadata, dict):
        raise ApiError(code="invalid_body", status=400, message="The body must be a JSON object")
    connections.set_metadata(env_id(), key, [connection_id], metadata, merge=merge)
    notify.connection_changed(ctx().settings, env_id(), key, connection_id)  # cached reads
    actors.connection_event("updated", key, connection_id, fields=["metadata"])
    return jsonify(metadata), (200 if merge else 201)


@bp.post("/connection/<path:connection_id>/metadata")
def legacy_set_metadata(connection_id: str):
    return _legacy_metadata(connection_id, merge=False)


@bp.patch("/connection/<path:connection_id>/metadata")
def legacy_update_metadata(connection_id: str):
    return _legacy_metadata(connection_id, merge=True)


class ProviderQuery(StrictQuery):
    search: str | None = None


@bp.get("/providers")
def list_providers():
    q = query(ProviderQuery, request.args)
    catalogue = ctx().catalogue
    found = catalogue.search(q.search) if q.search else catalogue.all()
    return jsonify({"data": [formatters.provider(name, entry, ctx().server_url) for name, entry in found]})


@bp.get("/providers/<path:name>")
def get_provider(name: str):
    query(NoQuery, request.args)
    entry = ctx().catalogue.get(name)
    if entry is None:
        raise NotFound(f"Unknown provider {name}")
    return jsonify({"data": formatters.provider(name, entry, ctx().server_url)})


@bp.get("/environment-variables")
def environment_variables():
    require_secret_key()
    query(NoQuery, request.args)
    return jsonify(envvars.list_plain(ctx(), env_id()))
