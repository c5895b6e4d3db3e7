"""`GET /connections/:id` answered from memory when nothing about the connection changed.

The credential read is the hottest call. Its full path (Flask, the database, decryption, the
answer's JSON) costs about a millisecond of this process's CPU and a Postgres round trip; most
reads return what the read before returned. So each store worker keeps the answers it gave,
already encoded, and serves the next read of the same connection straight from WSGI when:

- the gateway sent the connection's change versions (`X-Authport-Credential-Versions`, read in
  its rate-limit round trip: common/credential_versions.py) and they equal the ones the entry
  was made under. Every committed write of a connection — import or flow save, PATCH, metadata,
  delete, restore, purge, refresh saved or failed — sets a new version, and integration-wide
  changes bump the epoch (services/store/notify.py), so a change made on any replica is seen by
  every replica on the next read. Without the header (no Redis, or Redis unreachable) there is
  no cache: every read takes the full path;
- the token is not yet in its refresh buffer (the full path refreshes it then), the caller does
  not force a refresh, and the entry is younger than LIFETIME (a bound on what an unannounced
  change could cost: a change while Redis was failing, announced by the store's retry);
- the caller authenticated with the environment's secret key; the entry's key includes the
  environment, so no key of another environment can reach it.

A hit is answered as the full path answers, byte for byte but for `last_fetched_at` (now), and
records the read like it (services/store/read_records.py); that record's writer also sets the
row's `last_fetched_at`, in its batch (within a second), instead of one UPDATE per read.
Anything unusual (another query parameter, an odd id, a public key) goes to Flask.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from common.access_log import REQUEST_ID_ENVIRON
from common.credential_versions import VERSIONS_HEADER, decode_versions
from common.fields import CONNECTION_ID_PATTERN, KEY_PATTERN
from common.identity import Identity
from common.metrics import ROUTE_KEY
from common.wsgi import carries_internal_key
from services.store import formatters
from services.store.models import utcnow
from services.store.read_records import READ_DETAIL, recorder
from services.store.refresh import REFRESHABLE, missing_token, refresh_buffer

LIFETIME = 30.0  # seconds an entry is used at most, however its versions stand
CAPACITY = 10_000  # entries per worker (STORE_READ_CACHE_ENTRIES); the oldest go first
ROUTE = "/connections/<path:connection_id>"  # the Flask rule, for the request metrics
_VERSIONS = "HTTP_" + VERSIONS_HEADER.upper().replace("-", "_")
_PREFIXES = ("/connections/", "/connection/")
_KEY = re.compile(KEY_PATTERN)
_CONNECTION_ID = re.compile(CONNECTION_ID_PATTERN)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # services/store/actors.REQUEST_ID
_PLACEHOLDER = "authport-last-fetched-at-" + uuid.uuid4().hex
_FLAGS = {"refresh_token": {"true": True, "false": False}, "force_refresh": {"false": False},
          "refresh_github_app_jwt_token": {"false": False}}


@dataclass(frozen=True)
class Entry:
    versions: tuple[bytes | None, bytes | None]
    row_id: int
    made: float  # time.monotonic()
    fresh_until: datetime | None  # naive UTC: from then on a read refreshes the token first
    fragments: dict[bool, tuple[bytes, bytes]]  # refresh_token shown -> the answer around last_fetched_at


class ReadCache:
    def __init__(self, capacity: int = CAPACITY, lifetime: float = LIFETIME):
        self.capacity, self.lifetime = capacity, lifetime
        self.entries: dict[tuple[int, str, str], Entry] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[int, str, str], versions, now: datetime) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.versions != versions or time.monotonic() - entry.made > self.lifetime:
            return None
        if entry.fresh_until is not None and now >= entry.fresh_until:
            return None
        return entry

    def put(self, key: tuple[int, str, str], entry: Entry) -> None:
        if self.capacity <= 0:
            return  # turned off (STORE_READ_CACHE_ENTRIES=0)
        with self._guard:
            self.entries.pop(key, None)
            while len(self.entries) >= self.capacity:
                self.entries.pop(next(iter(self.entries)))  # dicts keep insertion order: the oldest
            self.entries[key] = entry

    def clear(self) -> None:
        with self._guard:
            self.entries.clear()


cache = ReadCache()


def fresh_until(conn, provider: dict | None) -> datetime | None:
    if conn.credentials_type not in REFRESHABLE or conn.expires_at is None:
        return None
    return conn.expires_at - refresh_buffer(provider)


def offer(environ, encode, identity: Identity, conn, integration, credentials: dict, provider: dict | None,
          present) -> None:
    """Keep the answer of a full read for the next ones, when the gateway sent its versions.

    Called after a read that neither forced nor made a refresh; `present(include_refresh)` gives
    the answer's dict and `encode` its bytes exactly as the full path sends them."""
    versions = decode_versions(environ.get(_VERSIONS))
    if versions is None or missing_token(conn, credentials):
        return
    # The versions are those the gateway read for the id and key it parsed: kept only when this
    # request parses, as a hit would, to exactly this connection (never, say, the other of a
    # repeated provider_config_key).
    target = _read_target(environ)
    if target is None or target[:2] != (conn.connection_id, integration.unique_key):
        return
    fragments = {}
    for shown in (False, True):
        answer = present(shown)
        answer["last_fetched_at"] = _PLACEHOLDER
        parts = encode(answer).split(json.dumps(_PLACEHOLDER).encode())
        if len(parts) != 2:
            return  # the placeholder also appears elsewhere in the answer (never in practice)
        fragments[shown] = (parts[0], parts[1])
    key = (identity.environment_id, integration.unique_key, conn.connection_id)
    cache.put(key, Entry(versions, conn.id, time.monotonic(), fresh_until(conn, provider), fragments))


def _read_target(environ) -> tuple[str, str, bool] | None:
    """(connection id, provider_config_key, refresh_token shown) of a plain read, else None."""
    path = environ.get("PATH_INFO", "")
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            connection_id = path[len(prefix):]
            break
    else:
        return None
    if "/" in connection_id or not _CONNECTION_ID.match(connection_id) or len(connection_id) > 255:
        return None
    provider_config_key, shown = None, False
    for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        if name == "provider_config_key" and provider_config_key is None:
            provider_config_key = value
        elif name in _FLAGS and value in _FLAGS[name]:
            shown = shown or (name == "refresh_token" and _FLAGS[name][value])
        else:
            return None  # repeated, unknown or unusual: the full path answers (or refuses) it
    if provider_config_key is None or len(provider_config_key) > 255 or not _KEY.match(provider_config_key):
        return None
    return connection_id, provider_config_key, shown


class CachedReads:
    """WSGI middleware in front of the store's Flask app: cache hits of the credential read."""

    def __init__(self, app, internal_key: str, capacity: int = CAPACITY):
        self.app = app
        self.internal_key = internal_key
        cache.capacity = capacity

    def __call__(self, environ, start_response):
        answer = self._hit(environ) if environ.get("REQUEST_METHOD") == "GET" and _VERSIONS in environ else None
        if answer is None:
            return self.app(environ, start_response)
        environ[ROUTE_KEY] = ROUTE
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    def _hit(self, environ) -> bytes | None:
        target = _read_target(environ)
        if target is None or not carries_internal_key(environ, self.internal_key):
            return None
        identity = Identity.from_headers(_Headers(environ))
        if identity is None or identity.key_kind != "secret":
            return None
        connection_id, provider_config_key, shown = target
        now = utcnow()
        entry = cache.get((identity.environment_id, provider_config_key, connection_id),
                          decode_versions(environ[_VERSIONS]), now)
        if entry is None:
            return None
        given = environ.get(REQUEST_ID_ENVIRON, "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        environ[REQUEST_ID_ENVIRON] = request_id
        recorder.add(identity.environment_id, provider_config_key, connection_id, identity.key_kind, identity.key_id,
                     request_id, READ_DETAIL[shown, False], touch=(entry.row_id, now))
        before, after = entry.fragments[shown]
        return before + b'"' + formatters.iso(now).encode() + b'"' + after


class _Headers:
    """The few request headers Identity.from_headers reads, straight from the environ."""

    __slots__ = ("environ",)

    def __init__(self, environ):
        self.environ = environ

    def __getitem__(self, name: str) -> str:
        return self.environ["HTTP_" + name.upper().replace("-", "_")]
