"""Who is calling: resolved by the gateway, passed to services in headers they trust only
together with the internal secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property

from common.errors import Forbidden

INTERNAL_KEY_HEADER = "X-Authport-Internal-Key"
HEADER_PREFIX = "X-Authport-"
_FIELDS = {
    "account_id": ("X-Authport-Account", int),
    "environment_id": ("X-Authport-Environment-Id", int),
    "environment": ("X-Authport-Environment", str),
    "plan": ("X-Authport-Plan", str),
    "rate_limit": ("X-Authport-Rate-Limit", int),
    "key_kind": ("X-Authport-Key-Kind", str),
    "key_id": ("X-Authport-Key-Id", int),
}


@dataclass(frozen=True)
class Identity:
    account_id: int
    environment_id: int
    environment: str
    plan: str
    rate_limit: int
    key_kind: str  # "secret", "public" or "connect_session"
    key_id: int

    def to_headers(self) -> dict[str, str]:
        return dict(self._headers)

    @cached_property
    def _headers(self) -> dict[str, str]:
        # Built once per identity: the gateway keeps resolved identities and sends these with every call.
        return {header: str(getattr(self, name)) for name, (header, _) in _FIELDS.items()}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Identity | None:
        """The identity the gateway resolved, or None when the headers are absent or broken."""
        try:
            return cls(**{name: kind(headers[header]) for name, (header, kind) in _FIELDS.items()})
        except (KeyError, ValueError):
            return None

    @classmethod
    def from_dict(cls, data: Mapping) -> Identity:
        return cls(**{name: data[name] for name in _FIELDS})

    def to_dict(self) -> dict:
        return asdict(self)


def require_secret(identity: Identity, message: str = "This route needs the environment's secret key.") -> None:
    """Refuse (403 forbidden) a caller that did not authenticate with the environment's secret key."""
    if identity.key_kind != "secret":
        raise Forbidden(message)
