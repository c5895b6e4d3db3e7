"""Where the store announces that what the proxy may have cached for a connection changed.

The store writes, after every committed change of a connection's credentials or of what is
injected with them (import or flow save, delete, refresh saved or failed, integration deleted or
changed), and the proxy reads with each call (`services/proxy/credentials.py`):

- `<prefix>:conn:<environment>:<provider_config_key>:<connection_id>`: a fresh random token per
  change (not a counter: the key expires a day after its last change, and a counter restarting
  at 1 could meet a cached 1 again); one connection's change.
- `<prefix>:conn-epoch`: a counter for changes that touch many connections at once (an
  integration deleted or changed).

While Redis is unreachable nothing here can be written or read. The store keeps the write it
committed and bumps `conn-epoch` once Redis is back (services/store/notify.py); the proxy
drops every entry at the first failed read and asks the store on every call until it reads
Redis again (services/proxy/credentials.py). Nothing stale is served because of an outage,
except by a proxy that made no call during all of it, for the second until the store's bump lands.
"""

from __future__ import annotations

VERSION_LIFETIME = 86400  # seconds; far longer than any cache entry lives


def version_key(prefix: str, environment_id: int, provider_config_key: str, connection_id: str) -> str:
    return f"{prefix}:conn:{environment_id}:{provider_config_key}:{connection_id}"


def epoch_key(prefix: str) -> str:
    return f"{prefix}:conn-epoch"


# The gateway reads both values in its rate-limit round trip and passes them to the proxy in
# this header (trusted only with the internal secret), which then needs no Redis call of its own.
VERSIONS_HEADER = "X-Authport-Credential-Versions"
_ABSENT = "-"


def encode_versions(version: bytes | None, epoch: bytes | None) -> str:
    return ",".join(_ABSENT if value is None else value.decode("ascii", "replace") for value in (version, epoch))


def decode_versions(header: str | None) -> tuple[bytes | None, bytes | None] | None:
    """(version, epoch) as Redis gave them, or None when the header is absent or malformed."""
    if not header:
        return None
    parts = header.split(",")
    if len(parts) != 2:
        return None
    version, epoch = (None if part == _ABSENT else part.encode() for part in parts)
    return version, epoch
