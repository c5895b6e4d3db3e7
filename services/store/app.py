"""The store process: owns the database and the encryption keys."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, g

from common.crypto import Cipher, DecryptionError
from common.errors import ApiError
from common.httpapp import base_app, error_response, install_health, require_internal_key
from common.providers import Catalogue
from common.settings import Settings, load_settings
from common.startup import StartupError, database_error, internal_key
from services.store import atrest, bootstrap, migrations
from services.store.context import StoreContext
from services.store.db import DatabaseUrlError, database, open_database
from services.store.purge import PurgeJob

log = logging.getLogger("authport.store")


def open_configured_database(settings: Settings):
    """The peewee database the settings name (not yet connected), bound to the models."""
    try:
        db = open_database(settings.database_url)
    except DatabaseUrlError as exc:
        raise StartupError(f"NANGO_DATABASE_URL: {exc}") from None
    except OSError as exc:  # the SQLite file's folder cannot be created
        raise StartupError(f"cannot use the database: {exc.strerror or exc} ({exc.filename})") from None
    database.initialize(db)
    return db


def prepare_database(settings: Settings, cipher: Cipher):
    """Open the database and bring it to the current schema, records and encryption state.

    Order matters: nothing is written before `check` accepts the keys, and stale ciphertext is
    re-encrypted (API key lookup hashes included) before bootstrap looks keys up.
    """
    db = open_configured_database(settings)
    try:
        with migrations.startup_lock(db):
            atrest.check(db, cipher)
            migrations.migrate(db)
            atrest.upgrade(db, cipher)
            generated = bootstrap.bootstrap(db, cipher, settings)
    except atrest.EncryptionStateError as exc:
        raise StartupError(str(exc)) from None
    except DecryptionError as exc:
        raise StartupError(f"a stored secret cannot be decrypted: {exc}") from None
    except Exception as exc:  # connection refused, auth failure…: one clear line, no traceback
        if database_error(exc):
            raise StartupError(f"cannot use the database: {database_error(exc)}") from None
        raise
    finally:
        if not db.is_closed():
            db.close()
        if hasattr(db, "close_all"):
            # Pooled connections must not survive into gunicorn's forked workers, where two
            # processes would share one socket to Postgres.
            db.close_all()
    for env, key in generated:
        # Shown once, at the start that created it (no NANGO_SECRET_KEY_<ENV> pinned it).
        print(f"authport: generated secret key for environment {env}: {key}", flush=True)
    return db


def install_decryption_errors(app: Flask) -> None:
    """A stored secret that no key opens (altered, or copied from another record): a clear JSON 500."""

    @app.errorhandler(DecryptionError)
    def _unreadable(error: DecryptionError):
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        # The message names table, field and record id only: never the value or a key.
        log.error("stored secret unreadable request_id=%s: %s", request_id, error)
        return error_response(ApiError(
            "A stored secret of this record cannot be decrypted: it was altered, copied from another record, "
            f"or encrypted with a key that is not configured. Request id: {request_id}",
            code="decryption_failed", status=500))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    internal_key(settings)
    cipher = Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD)
    catalogue = Catalogue.configured(settings)
    db = prepare_database(settings, cipher)

    app = base_app("authport.store")
    app.extensions["authport_store"] = StoreContext(settings=settings, cipher=cipher, catalogue=catalogue)
    require_internal_key(app, settings.INTERNAL_API_KEY)
    install_decryption_errors(app)

    # Started by the first request each forked worker serves: see PurgeJob for why not here.
    purge_job = app.extensions["authport_purge"] = PurgeJob(settings, db)

    @app.before_request
    def _open_db():
        purge_job.start_in_worker()
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_db(_exc):
        if not db.is_closed():
            db.close()

    def ready() -> dict[str, str]:
        try:
            with db.connection_context():
                db.execute_sql("SELECT 1")
            return {"database": "ok"}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return {"database": f"error: {type(exc).__name__}"}

    install_health(app, ready)
    from services.store import environment_views, internal_views, key_views, legacy_config_views, views

    app.register_blueprint(views.bp)
    app.register_blueprint(key_views.bp)
    app.register_blueprint(environment_views.bp)
    app.register_blueprint(legacy_config_views.bp)
    app.register_blueprint(internal_views.bp)
    from services.store import flow_views

    app.register_blueprint(flow_views.bp)
    from services.store import webhook_views

    app.register_blueprint(webhook_views.bp)
    from services.store import inbound_views

    app.register_blueprint(inbound_views.bp)
    from services.store import actors, lifecycle_views, log_views

    app.register_blueprint(lifecycle_views.bp)
    app.register_blueprint(log_views.bp)
    app.register_blueprint(log_views.internal)
    from services.store import dashboard_views

    app.register_blueprint(dashboard_views.bp)

    def metrics_extra():
        """Read at each scrape: the webhook outbox's depth, and this worker's database pool."""
        from peewee import fn

        from common.metrics import gauge
        from services.store.db import is_postgres
        from services.store.models import WebhookOutbox

        if is_postgres(db):
            pool = getattr(db, "obj", db)
            yield gauge("authport_db_pool_connections", "This store worker's Postgres pool, by state.",
                        {("in_use",): len(pool._in_use), ("idle",): len(pool._connections)}, ["state"])
        depth = {("pending",): 0, ("failed",): 0}
        for state, count in (WebhookOutbox.select(WebhookOutbox.state, fn.COUNT(WebhookOutbox.id))
                             .where(WebhookOutbox.state.in_(["pending", "failed"]))
                             .group_by(WebhookOutbox.state).tuples()):
            depth[(state,)] = count
        yield gauge("authport_webhook_outbox_depth", "Auth webhooks waiting (pending) or given up (failed).",
                    depth, ["state"])

    app.extensions["authport_metrics_extra"] = metrics_extra
    from services.store.read_cache import CachedReads

    app.wsgi_app = CachedReads(app.wsgi_app, settings.INTERNAL_API_KEY, settings.STORE_READ_CACHE_ENTRIES)

    @app.after_request
    def _request_id(response):
        # The id the records of this request carry (the caller's X-Request-Id when well-formed).
        response.headers["X-Request-Id"] = actors.request_id()
        return response

    return app
