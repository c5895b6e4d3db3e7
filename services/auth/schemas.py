"""Request schemas of the auth routes (strict bodies, as Nango's zod schemas)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from common.validation import Strict

KEY_PATTERN = r"^[a-zA-Z0-9~:.@ _-]+$"
CONNECTION_ID_PATTERN = r"""^[a-zA-Z0-9,.;:=+~\[\]|@${}"'\\/_ -]+$"""
TAG_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-./]*$")
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Short = Annotated[str, StringConstraints(max_length=255)]
UniqueKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=KEY_PATTERN)]
ConnectionId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=CONNECTION_ID_PATTERN)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s/]+")]
Credential = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


def check_tags(tags: dict[str, str] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    if len(tags) > 10:
        raise ValueError("at most 10 tags")
    seen: set[str] = set()
    for key, value in tags.items():
        if not TAG_KEY.match(key) or len(key) > 64:
            raise ValueError(f"invalid tag key {key!r}")
        if not isinstance(value, str) or not 1 <= len(value) <= 255:
            raise ValueError(f"tag {key!r} needs a string value of 1-255 characters")
        if key.lower() in seen:
            raise ValueError(f"duplicate tag key {key!r}")
        seen.add(key.lower())
    return tags


class EndUser(Strict):
    id: Id
    email: Annotated[str, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    display_name: Short | None = None
    tags: dict[str, str] | None = None

    _tags = field_validator("tags")(classmethod(lambda cls, v: check_tags(v)))


class Organization(Strict):
    id: Id
    display_name: Short | None = None


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
