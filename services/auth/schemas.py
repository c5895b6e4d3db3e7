"""Request schemas of the auth routes (strict bodies, as Nango's zod schemas)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from common.fields import ConnectionId, EndUser, Organization, UniqueKey, check_tags
from common.validation import Strict

Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s/]+")]
Credential = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class ConfigDefaults(Loose):
    oauth_scopes_override: list[str] | str | None = None


class IntegrationDefaults(Strict):
    user_scopes: Annotated[str, StringConstraints(max_length=2048)] | None = None
    authorization_params: dict[str, str] | None = None
    connection_config: ConfigDefaults | None = None


class Override(Strict):
    docs_connect: Url | None = None


class SessionCommon(Strict):
    end_user: EndUser | None = None
    organization: Organization | None = None
    integrations_config_defaults: dict[str, IntegrationDefaults] | None = None
    overrides: dict[str, Override] | None = None
    webhook_url_override: Url | None = None
    tags: dict[str, str] | None = None

    _tags = field_validator("tags")(classmethod(lambda cls, v: check_tags(v)))


class ConnectSessionCreate(SessionCommon):
    allowed_integrations: Annotated[list[UniqueKey], Field(max_length=1000)] | None = None


class ReconnectSessionCreate(SessionCommon):
    connection_id: ConnectionId
    integration_id: UniqueKey


class ApiKeyBody(Strict):
    apiKey: Credential


class BasicBody(Strict):
    username: Annotated[str, StringConstraints(max_length=1024)] = ""
    password: Annotated[str, StringConstraints(max_length=1024)] = ""


class ClientCredentialsBody(Strict):
    client_id: Credential
    client_secret: Annotated[str, StringConstraints(max_length=4096)] | None = None
    client_certificate: Annotated[str, StringConstraints(max_length=16384)] | None = None
    client_private_key: Annotated[str, StringConstraints(max_length=16384)] | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_none=True)
