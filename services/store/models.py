"""peewee models of the store's tables (the schema itself is created by `migrations`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CompositeKey,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from common.validation import loads_finite
from services.store.db import database


def utcnow() -> datetime:
    """Naive UTC time with millisecond precision, as every table stores it."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class JSONField(TextField):
    """JSON text. A non-finite number is never written (`allow_nan=False`: the edge refuses them);
    one a release before that check stored reads back as null, so that one bad row cannot make
    a whole listing unreadable to JSON parsers."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)

    def python_value(self, value):
        return None if value is None else loads_finite(value)


class Base(Model):
    """Every table. Encrypted columns (ENCRYPTED_FIELDS, below) are sealed and opened here only:
    each ciphertext is bound to its table, its column and its row's uid, which is what stops a
    value copied into another row or column from decrypting there."""

    class Meta:
        database = database

    @classmethod
    def binding(cls, field: str, uid: str) -> tuple[str, str, str]:
        """(table, column, row uid) a value of `field` is bound to; refuses a column not encrypted."""
        if (cls, field) not in _ENCRYPTED:
            raise ValueError(f"{cls._meta.table_name}.{field} is not an encrypted column")
        return cls._meta.table_name, field, uid

    @classmethod
    def sealed(cls, cipher, field: str, uid: str, value: str) -> str:
        """The stored form of `value` in `field` of the row `uid` (for a row not created yet)."""
        return cipher.encrypt(value, *cls.binding(field, uid))

    def seal(self, cipher, field: str, value: str | None) -> str | None:
        """Set `field` to `value` sealed for this row (None stays None); answers what was set."""
        stored = None if value is None else type(self).sealed(cipher, field, self.uid, value)
        setattr(self, field, stored)
        return stored

    def unseal(self, cipher, field: str) -> str | None:
        """The plaintext of `field` of this row (None when unset); DecryptionError if it is not its own."""
        stored = getattr(self, field)
        return None if stored is None else cipher.decrypt(stored, *type(self).binding(field, self.uid))

    def unseal_json(self, cipher, field: str):
        plain = self.unseal(cipher, field)
        return None if plain is None else json.loads(plain)


class Account(Base):
    id = BigAutoField()
    name = TextField(unique=True)
    plan = TextField(default="free")
    rate_limit = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "accounts"


class Environment(Base):
    id = BigAutoField()
    account = ForeignKeyField(Account, column_name="account_id", backref="environments")
    name = TextField()
    uid = TextField(unique=True)
    webhook_url = TextField(null=True)
    callback_url = TextField(null=True)
    hmac_key_enc = TextField(null=True)
    hmac_enabled = BooleanField(default=False)
    webhook_signing_key_enc = TextField(null=True)  # NULL: webhooks are signed with the default secret key
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "environments"


class ApiKey(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id", backref="keys")
    kind = TextField()  # secret | public
    name = TextField()
    lookup_hash = TextField(unique=True)
    secret_enc = TextField()
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class Integration(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id")
    unique_key = TextField()
    provider = TextField()
    display_name = TextField(null=True)
    client_id = TextField(null=True)
    client_secret_enc = TextField(null=True)
    scopes = TextField(null=True)
    app_link = TextField(null=True)
    custom = JSONField(null=True)
    forward_webhooks = BooleanField(default=True)
    integration_config = JSONField(null=True)
    webhook_secret_enc = TextField(null=True)
    app_private_key_enc = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    deleted_at = DateTimeField(null=True)

    class Meta:
        table_name = "integrations"


class Connection(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id")
    integration = ForeignKeyField(Integration, column_name="integration_id")
    connection_id = TextField()
    credentials_enc = TextField()
    credentials_type = TextField()
    connection_config = JSONField(default=dict)
    metadata = JSONField(null=True)
    tags = JSONField(default=dict)
    end_user = JSONField(null=True)
    end_user_id = TextField(null=True)
    organization_id = TextField(null=True)
    webhook_url_override = TextField(null=True)
    expires_at = DateTimeField(null=True)
    last_fetched_at = DateTimeField(null=True)
    last_refresh_success = DateTimeField(null=True)
    last_refresh_failure = DateTimeField(null=True)
    refresh_attempts = IntegerField(default=0)
    refresh_exhausted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    deleted_at = DateTimeField(null=True)

    class Meta:
        table_name = "connections"


class EnvironmentVariable(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id")
    name = TextField()
    value_enc = TextField()
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "environment_variables"


class Operation(Base):
    """One recorded operation (a token refresh, a proxied call): what happened, never a secret."""

    id = BigAutoField()
    environment = ForeignKeyField(Environment, column_name="environment_id")
    kind = TextField()
    provider_config_key = TextField(null=True)
    connection_id = TextField(null=True)
    success = BooleanField()
    error_code = TextField(null=True)
    detail = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)
    # Proxied calls only (kind "proxy"); NULL in other records.
    method = TextField(null=True)
    path = TextField(null=True)  # the endpoint without its query
    status = IntegerField(null=True)
    outcome = TextField(null=True)
    attempts = IntegerField(null=True)
    egress_address = TextField(null=True)
    bytes = BigIntegerField(null=True)
    duration_ms = DoubleField(null=True)
    actor = TextField(null=True)  # who acted: "key:<name>", "dashboard:<user>", "admin", "system" (NULL: system)
    request_id = TextField(null=True)

    class Meta:
        table_name = "operations"


class Meta(Base):
    name = TextField(primary_key=True)
    value = TextField()

    class Meta:
        table_name = "authport_meta"


class ConnectSession(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id")
    token_hash = TextField(unique=True)
    end_user = JSONField(null=True)
    organization = JSONField(null=True)
    allowed_integrations = JSONField(null=True)
    integrations_config_defaults = JSONField(null=True)
    overrides = JSONField(null=True)
    webhook_url_override = TextField(null=True)
    tags = JSONField(null=True)
    reconnect_connection_id = TextField(null=True)
    reconnect_integration = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()

    class Meta:
        table_name = "connect_sessions"


class OAuthSession(Base):
    id = BigAutoField()
    uid = TextField(unique=True)
    environment = ForeignKeyField(Environment, column_name="environment_id")
    state_hash = TextField(unique=True)
    provider_config_key = TextField()
    provider = TextField()
    connection_id = TextField()
    connect_session_id = IntegerField(null=True)
    connection_config = JSONField(default=dict)
    secrets_enc = TextField()
    ws_client_id = TextField(null=True)
    redirect_uri = TextField()
    may_overwrite = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()

    class Meta:
        table_name = "oauth_sessions"


class WebhookOutbox(Base):
    """One webhook to a customer's backend, from the moment its event is committed until it is
    delivered or given up (services/store/webhook_outbox.py). The body holds no credential and the
    signing key is not kept: the URL and the key are resolved at each delivery."""

    id = BigAutoField()
    environment = ForeignKeyField(Environment, column_name="environment_id")
    event_type = TextField()  # "auth"
    operation = TextField()  # creation | override | refresh
    provider_config_key = TextField()
    connection_id = TextField()
    connection_uid = TextField(null=True)  # the row whose webhook_url_override applies, also once deleted
    body = TextField()  # the exact bytes that are signed and sent
    state = TextField(default="pending")  # pending | delivered | failed
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    last_attempt_at = DateTimeField(null=True)
    last_status = IntegerField(null=True)
    last_error = TextField(null=True)  # a code such as status_500 or timeout, never a body
    leased_until = DateTimeField(null=True)
    leased_by = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    delivered_at = DateTimeField(null=True)

    class Meta:
        table_name = "webhook_outbox"


class UsageMinute(Base):
    """Requests one account made in one environment in one minute (epoch minutes), and its 429s."""

    account_id = BigIntegerField()
    environment_id = BigIntegerField()
    minute = BigIntegerField()
    requests = IntegerField(default=0)
    limited = IntegerField(default=0)

    class Meta:
        table_name = "usage_minutes"
        primary_key = CompositeKey("account_id", "environment_id", "minute")


# Every encrypted column: (model, column attribute). The associated data binds each value to
# "<table>.<column>.<row uid>".
ENCRYPTED_FIELDS: tuple[tuple[type[Base], str], ...] = (
    (ApiKey, "secret_enc"),
    (Environment, "hmac_key_enc"),
    (Environment, "webhook_signing_key_enc"),
    (Integration, "client_secret_enc"),
    (Integration, "webhook_secret_enc"),
    (Integration, "app_private_key_enc"),
    (Connection, "credentials_enc"),
    (EnvironmentVariable, "value_enc"),
    (OAuthSession, "secrets_enc"),
)
_ENCRYPTED = frozenset(ENCRYPTED_FIELDS)

