"""Request schemas of the store's public routes (strict: unknown fields are refused)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from common.fields import ConnectionId, Organization, Short, UniqueKey, check_tags
from common.fields import EndUser as BaseEndUser
from common.validation import Strict, StrictQuery, stringbool

Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
QueryBool = Annotated[bool, BeforeValidator(stringbool)]
SCOPES = re.compile(r"^[0-9a-zA-Z:/_.*-]+(,[0-9a-zA-Z:/_.*-]+)*$")


class OAuthAppCredentials(Strict):
    type: Literal["OAUTH1", "OAUTH2", "TBA"]
    client_id: Secret
    client_secret: Secret
    scopes: Annotated[str, StringConstraints(max_length=4096)] | None = None
    webhook_secret: Secret | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: str | None) -> str | None:
        if value and not SCOPES.match(value):
            raise ValueError("scopes must be a comma-separated list")
        return value


class AppCredentials(Strict):
    type: Literal["APP"]
    app_id: Short
    app_link: Short
    private_key: Annotated[str, StringConstraints(min_length=1, max_length=16384)]


class CustomCredentials(Strict):
    type: Literal["CUSTOM"]
    client_id: Secret
    client_secret: Secret
    app_id: Short
    app_link: Short
    private_key: Annotated[str, StringConstraints(min_length=1, max_length=16384)]


IntegrationCredentials = Annotated[
    OAuthAppCredentials | AppCredentials | CustomCredentials, Field(discriminator="type")
]
JsonObject = dict[str, Any]


class IntegrationCreate(Strict):
    provider: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    unique_key: UniqueKey
    display_name: Short | None = None
    credentials: IntegrationCredentials | None = None
    forward_webhooks: bool | None = None
    integration_config: JsonObject | None = None
    custom: JsonObject | None = None


class IntegrationUpdate(Strict):
    unique_key: UniqueKey | None = None
    display_name: Short | None = None
    credentials: IntegrationCredentials | None = None
    forward_webhooks: bool | None = None
    integration_config: JsonObject | None = None
    custom: JsonObject | None = None


class IntegrationQuery(StrictQuery):
    include: list[Literal["webhook", "credentials"]] | Literal["webhook", "credentials"] | None = None


class EndUser(BaseEndUser):
    organization: Organization | None = None


Timestamp = str | int | float


class OAuth2Import(Strict):
    type: Literal["OAUTH2"]
    access_token: Secret
    refresh_token: Secret | None = None
    expires_at: Timestamp | None = None
    config_override: dict[str, str] | None = None
    raw: JsonObject | None = None


class OAuth2CCImport(Strict):
    type: Literal["OAUTH2_CC"]
    token: Secret
    client_id: Secret
    client_secret: Secret
    client_certificate: Secret | None = None
    client_private_key: Secret | None = None
    expires_at: Timestamp | None = None
    raw: JsonObject | None = None


class OAuth1Import(Strict):
    type: Literal["OAUTH1"]
    oauth_token: Secret
    oauth_token_secret: Secret
    config_override: dict[str, str] | None = None
    raw: JsonObject | None = None


class ApiKeyImport(Strict):
    type: Literal["API_KEY"]
    apiKey: Secret


class BasicImport(Strict):
    type: Literal["BASIC"]
    username: Annotated[str, StringConstraints(max_length=1024)]
    password: Annotated[str, StringConstraints(max_length=1024)] = ""


class ClientOverride(Strict):
    client_id: Secret | None = None
    client_secret: Secret | None = None


class TbaImport(Strict):
    type: Literal["TBA"]
    token_id: Secret
    token_secret: Secret
    config_override: ClientOverride | None = None


class NoneImport(Strict):
    """An UNAUTHENTICATED provider's connection: no credentials (shown as `{}`)."""

    type: Literal["NONE"]


class TokenModeImport(Strict):
    """JWT, TWO_STEP, SIGNATURE and BILL credentials: the catalogue declares the fields the end
    user gives (checked by auth when it captures them), next to the token made from them."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["JWT", "TWO_STEP", "SIGNATURE", "BILL"]
    token: Secret | None = None
    expires_at: Timestamp | None = None
    raw: JsonObject | None = None


class AwsSigV4Import(Strict):
    """AWS keys the proxy signs calls with (Signature V4); temporary ones carry a session token."""

    type: Literal["AWS_SIGV4"]
    access_key_id: Secret
    secret_access_key: Secret
    session_token: Secret | None = None
    role_arn: Secret | None = None
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")] | None = None
    expires_at: Timestamp | None = None


ImportCredentials = Annotated[
    OAuth2Import | OAuth2CCImport | OAuth1Import | ApiKeyImport | BasicImport | TbaImport | NoneImport
    | TokenModeImport | AwsSigV4Import,
    Field(discriminator="type"),
]


class ConnectionImport(Strict):
    provider_config_key: UniqueKey
    connection_id: ConnectionId | None = None
    metadata: JsonObject | None = None
    connection_config: JsonObject | None = None
    webhook_url_override: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None = None
    end_user: EndUser | None = None
    tags: dict[str, str] | None = None
    credentials: ImportCredentials

    _tags = field_validator("tags")(classmethod(lambda cls, v: check_tags(v)))


class ConnectionPatch(Strict):
    end_user: EndUser | None = None
    tags: dict[str, str] | None = None
    webhook_url_override: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None = None

    _tags = field_validator("tags")(classmethod(lambda cls, v: check_tags(v)))


class ConnectionGetQuery(StrictQuery):
    provider_config_key: UniqueKey
    force_refresh: QueryBool = False
    refresh_token: QueryBool = False
    refresh_github_app_jwt_token: QueryBool = False


class ConnectionKeyQuery(StrictQuery):
    provider_config_key: UniqueKey


class ConnectionListQuery(StrictQuery):
    connectionId: ConnectionId | None = None
    search: Short | None = None
    endUserId: Short | None = None
    endUserOrganizationId: Short | None = None
    integrationId: Short | None = None
    tags: dict[str, str] | None = None
    withError: bool | None = None  # an Authport extension: only connections whose last refresh failed (or not)
    limit: Annotated[int, Field(ge=1, le=10000)] = 10000
    page: Annotated[int, Field(ge=0)] = 0


class MetadataBody(Strict):
    connection_id: ConnectionId | Annotated[list[ConnectionId], Field(min_length=1, max_length=1000)]
    provider_config_key: UniqueKey
    metadata: JsonObject
