"""Field types and sub-schemas that the store's and auth's request schemas share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, field_validator

from common.validation import Strict

KEY_PATTERN = r"^[a-zA-Z0-9~:.@ _-]+$"
# Nango's permissive connection id: letters, digits and a fixed set of punctuation (no control characters).
CONNECTION_ID_PATTERN = r"""^[a-zA-Z0-9,.;:=+~\[\]|@${}"'\\/_ -]+$"""
TAG_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-./]*$")
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Short = Annotated[str, StringConstraints(max_length=255)]
CONNECTION_ID = re.compile(CONNECTION_ID_PATTERN)


def path_segments_problem(value: str) -> str | None:
    """Why an id could not be reached in a URL path, or None.

    Ids travel as path segments (`/connections/<id>`), percent-encoded or not. The gateway refuses
    "." and ".." segments (a client removes them, reaching other routes) and the router merges
    "//", so an id made of such segments would be written and never found again."""
    if any(part in ("", ".", "..") for part in value.split("/")):
        return ("must not start or end with '/', contain '//', or have '.' or '..' between slashes "
                "(it could not be used in a URL)")
    return None


def connection_id_problem(value: str) -> str | None:
    """The one connection id grammar, for every place an id enters (bodies, queries, paths)."""
    if not 1 <= len(value) <= 255 or not CONNECTION_ID.fullmatch(value):
        return f"Invalid string: must match pattern /{CONNECTION_ID_PATTERN}/ and have 1-255 characters"
    problem = path_segments_problem(value)
    return f"Invalid connection id: {problem}" if problem else None


def _reachable(value: str) -> str:
    problem = path_segments_problem(value)
    if problem:
        raise ValueError(f"Invalid id: {problem}")
    return value


UniqueKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=KEY_PATTERN),
                      AfterValidator(_reachable)]
ConnectionId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=CONNECTION_ID_PATTERN),
                         AfterValidator(_reachable)]
Email = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


def check_tags(tags: dict[str, str] | None) -> dict[str, str] | None:
    """At most 10 tags; keys like Nango's (a letter, then letters, digits, _-./), values 1-255 chars."""
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


class Organization(Strict):
    id: Id
    display_name: Short | None = None


class EndUser(Strict):
    """The end user a connect session or connection belongs to."""

    id: Id
    email: Email | None = None
    display_name: Short | None = None
    tags: dict[str, str] | None = None

    _tags = field_validator("tags")(classmethod(lambda cls, v: check_tags(v)))
