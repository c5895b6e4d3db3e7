"""`${...}` templates of the provider catalogue, filled from a connection's config and credentials.

`${connectionConfig.x}`, `${credentials.x}`, `${apiKey}`, `${accessToken}` (and any other plain
name found in the values) are replaced; `A || B` means B when A names something that is missing.
A value placed into a URL's host or path must be a plain token (letters, digits, `.-_~:`), so an
end user's `params[subdomain]=evil.example/x?` cannot move the token request, and the client
secret with it, to another host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
URL_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._~:-]+$")


class MissingValue(Exception):
    """A placeholder names a value the connection does not have."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class UnsafeValue(Exception):
    """A value would change the shape of the URL it is placed into."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def lookup(name: str, values: Mapping[str, Any]) -> Any:
    """The value a placeholder names: dotted names walk nested mappings."""
    current: Any = values
    for part in name.strip().split("."):
        if not isinstance(current, Mapping) or current.get(part) in (None, ""):
            raise MissingValue(name.strip())
        current = current[part]
    return current


def _fill(template: str, values: Mapping[str, Any], url: bool) -> str:
    def replace(match: re.Match) -> str:
        value = str(lookup(match.group(1), values))
        if url and not URL_SAFE_VALUE.match(value):
            raise UnsafeValue(match.group(1).strip())
        return value

    return PLACEHOLDER.sub(replace, template)


def fill(template: str, values: Mapping[str, Any], *, url: bool = False) -> str:
    """`template` with its placeholders replaced; the first alternative of `A || B` that resolves."""
    alternatives = [part.strip() for part in template.split("||")] if "||" in template else [template]
    for alternative in alternatives[:-1]:
        try:
            return _fill(alternative, values, url)
        except MissingValue:
            continue
    return _fill(alternatives[-1], values, url)


def fill_all(mapping: Mapping[str, Any] | None, values: Mapping[str, Any]) -> dict[str, str]:
    """Every string value of `mapping` filled (non-strings kept as their text)."""
    return {key: fill(value, values) if isinstance(value, str) else str(value)
            for key, value in (mapping or {}).items()}


def template_values(connection_config: Mapping[str, Any] | None = None,
                    credentials: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The names templates may use for a connection."""
    credentials = dict(credentials or {})
    values: dict[str, Any] = {"connectionConfig": dict(connection_config or {}), "credentials": credentials}
    for name in ("apiKey", "username", "password"):
        if credentials.get(name) not in (None, ""):
            values[name] = credentials[name]
    if credentials.get("access_token"):
        values["accessToken"] = credentials["access_token"]
    return values
