"""Start-up failures: reported as one line naming what is wrong, then exit status 2."""

from __future__ import annotations


class StartupError(Exception):
    """The process cannot start; the message says why and what to change."""


def database_error(exc: Exception) -> str | None:
    """A one-line, password-free description of a database connection failure, else None."""
    name = type(exc).__name__
    if name in ("OperationalError", "InterfaceError") or "psycopg2" in type(exc).__module__:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else name
        return first.replace("\t", " ")
    return None


def internal_key(settings) -> str:
    """`INTERNAL_API_KEY`, which every process needs (services accept only requests carrying it,
    and the gateway and services send it); unset, the process does not start."""
    if not settings.INTERNAL_API_KEY:
        raise StartupError("INTERNAL_API_KEY: must be set (the secret services require from each other)")
    return settings.INTERNAL_API_KEY
