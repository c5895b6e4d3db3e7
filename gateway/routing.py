"""Which internal service owns a public path."""

from __future__ import annotations

# (path prefix, owning service). The first match wins; a prefix matches whole segments only.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/integrations", "store"),
    ("/connections", "store"),
    ("/connection", "store"),
    ("/providers", "store"),
    ("/environment-variables", "store"),
)


def owner(path: str) -> str | None:
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None
