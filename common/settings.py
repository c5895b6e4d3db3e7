"""One typed table of every environment variable Authport reads.

Each process calls `load_settings()` once at start. A malformed value raises `SettingsError`
naming the variable; `common.serve` turns that into a one-line message and exit status 2.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
ENV_KEY_VAR = re.compile(r"^NANGO_SECRET_KEY_([A-Z0-9_]+)$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


class SettingsError(Exception):
    """A variable has a value Authport cannot use."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


def to_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected true or false (also 1/0, yes/no, on/off)")


def to_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def to_positive_int(raw: str) -> int:
    number = to_int(raw)
    if number < 1:
        raise ValueError(f"expected a whole number of at least 1, got {number}")
    return number


def to_non_negative_int(raw: str) -> int:
    number = to_int(raw)
    if number < 0:
        raise ValueError(f"expected a whole number of at least 0, got {number}")
    return number


def to_port(raw: str) -> int:
    port = to_int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port number 0-65535, got {port}")
    return port


def to_key(raw: str) -> bytes:
    """Decode an AES-256 key given as base64 of 32 bytes."""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of 32 random bytes (openssl rand -base64 32)") from None
    if len(key) != 32:
        raise ValueError(f"must be base64 of 32 bytes, this decodes to {len(key)} bytes")
    return key


def to_key_list(raw: str) -> tuple[bytes, ...]:
    return tuple(to_key(part) for part in raw.split(",") if part.strip())


def to_uuid4(raw: str) -> str:
    """A pinned API key: a UUID v4, as Nango requires (the value itself is never echoed)."""
    key = raw.strip().lower()
    if not UUID4.match(key):
        raise ValueError("must be a UUID v4 (e.g. the output of `uuidgen -r`)")
    return key


def to_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return url


def to_log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise ValueError("expected text or json")
    return value


def to_str(raw: str) -> str:
    return raw.strip()


def to_providers_file_mode(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in ("extend", "replace"):
        raise ValueError("expected extend or replace")
    return mode


def to_plan(raw: str) -> str:
    plan = raw.strip().lower()
    if plan not in ("free", "starter", "growth", "enterprise"):
        raise ValueError("expected one of free, starter, growth, enterprise")
    return plan


def to_seconds(raw: str) -> float:
    try:
        seconds = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {raw!r}") from None
    if not 0 < seconds <= 86400:
        raise ValueError(f"expected a number of seconds above 0 (at most 86400), got {raw.strip()}")
    return seconds


def to_seconds_list(raw: str) -> tuple[float, ...]:
    """Comma-separated seconds, each above 0 and at most a day (e.g. 1,5,30,120)."""
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if part:
            try:
                found.append(to_seconds(part))
            except ValueError:
                raise ValueError(f"expected comma-separated seconds (each above 0, at most 86400), got {raw!r}") \
                    from None
    if not found:
        raise ValueError("expected at least one number of seconds")
    return tuple(found)


SIZE_UNITS = {"": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
              "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def to_bytes(raw: str) -> int:
    """A size: a whole number of bytes, or with a unit (64K, 10MB, 2GiB; powers of 1024)."""
    match = re.match(r"^\s*(\d+)\s*([a-z]*)\s*$", raw.lower())
    if not match or match.group(2) not in SIZE_UNITS or int(match.group(1)) < 1:
        raise ValueError(f"expected a size in bytes such as 1048576, 64K, 10MB or 2GiB, got {raw!r}")
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def to_ip_list(raw: str) -> tuple[str, ...]:
    import ipaddress

    found = []
    for part in (p.strip() for p in raw.split(",")):
        if part:
            try:
                found.append(str(ipaddress.ip_address(part)))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
    return tuple(found)


def to_cidr_list(raw: str) -> tuple:
    from common.addresses import parse_networks

    return parse_networks(raw)


def to_proxy_url(raw: str) -> str:
    url = raw.strip()
    if not re.match(r"^https?://([^/\s@]+@)?[^/\s@]+/?$", url):
        raise ValueError("expected a forward proxy URL such as http://10.0.0.5:3128")
    return url


def to_path(raw: str) -> str:
    path = raw.strip()
    if not re.match(r"^/[A-Za-z0-9._~/-]*$", path):
        raise ValueError(f"expected a URL path starting with /, got {raw!r}")
    return path


def to_origin_list(raw: str) -> tuple[str, ...]:
    """Comma-separated web origins (`scheme://host[:port]`, no path), lower-cased, in order."""
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", part):
            raise ValueError(f"expected origins such as https://app.example.com (no path, no wildcard), got {part!r}")
        found.append(part.lower())
    return tuple(dict.fromkeys(found))


def to_log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("expected one of debug, info, warning, error, critical")
    return level


@dataclass(frozen=True)
class Var:
    name: str
    coerce: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False


# The table: every variable, its type, default and meaning. README's configuration table is
# generated from it (`python -m common.settings --markdown`).
VARIABLES: tuple[Var, ...] = (
    Var("SERVER_PORT", to_port, 3003, "Port of the gateway, the only public process."),
    Var("NANGO_SERVER_URL", to_url, None,
        "Public URL of the gateway (default http://localhost:SERVER_PORT, https with TLS_CERT_FILE)."),
    Var("NANGO_CALLBACK_URL", to_url, None, "OAuth callback URL (default NANGO_SERVER_URL + /oauth/callback)."),
    Var("NANGO_PUBLIC_CONNECT_URL", to_url, None, "Base of connect_link (default NANGO_SERVER_URL + /connect)."),
    Var("CONNECT_UI_ALLOWED_ORIGINS", to_origin_list, (),
        "Comma-separated origins (https://app.example.com) whose pages may embed the connect page with "
        "@nangohq/frontend's openConnectUI (CSP frame-ancestors); the server's own origin always may."),
    Var("NANGO_SERVER_WEBSOCKETS_PATH", to_path, "/",
        "Path of the gateway's websocket that the frontend SDK's popup flow waits on."),
    Var("NANGO_DATABASE_URL", to_str, None, "Database URL (postgresql://user:pass@host:5432/db or sqlite:///path)."),
    Var("DATABASE_URL", to_str, None, "Fallback for NANGO_DATABASE_URL."),
    Var("NANGO_DB_HOST", to_str, None, "Postgres host; when set, the NANGO_DB_* variables build the URL."),
    Var("NANGO_DB_PORT", to_port, 5432, "Postgres port."),
    Var("NANGO_DB_USER", to_str, "nango", "Postgres user."),
    Var("NANGO_DB_PASSWORD", to_str, "", "Postgres password.", secret=True),
    Var("NANGO_DB_NAME", to_str, "nango", "Postgres database name."),
    Var("NANGO_DB_SSL", to_bool, False, "Require TLS to Postgres."),
    Var("NANGO_SECRET_KEY", to_uuid4, None, "Pins the secret key of the default environment (dev).", secret=True),
    Var("NANGO_ENCRYPTION_KEY", to_key, None,
        "AES-256 key (base64 of 32 bytes) for data at rest; unset means plaintext with a warning.", secret=True),
    Var("NANGO_ENCRYPTION_KEYS_OLD", to_key_list, (),
        "Comma-separated decrypt-only keys kept during a key rotation.", secret=True),
    Var("NANGO_REDIS_URL", to_str, None,
        "Redis URL for shared rate limits, key and credential cache epochs, and websocket fan-out."),
    Var("REDIS_KEY_PREFIX", to_str, "authport", "Prefix of every Redis key, so installations can share a Redis."),
    Var("NANGO_DASHBOARD_USERNAME", to_str, None, "Dashboard HTTP Basic user name."),
    Var("NANGO_DASHBOARD_PASSWORD", to_str, None, "Dashboard HTTP Basic password.", secret=True),
    Var("TELEMETRY", to_bool, False, "Accepted for compatibility; Authport sends no telemetry either way."),
    Var("INTERNAL_API_KEY", to_str, None, "Shared secret that services require from the gateway and each other.",
        secret=True),
    Var("BIND_HOST", to_str, "127.0.0.1", "Address the internal services (store, auth, proxy, dashboard) listen on."),
    Var("GATEWAY_HOST", to_str, "0.0.0.0",
        "Address the gateway listens on (`make up` uses 127.0.0.1 unless this is set)."),
    Var("TLS_CERT_FILE", to_str, None,
        "PEM certificate chain: with TLS_KEY_FILE the gateway serves HTTPS only (TLS 1.2 minimum)."),
    Var("TLS_KEY_FILE", to_str, None, "PEM private key of TLS_CERT_FILE (read by the gateway only)."),
    Var("STORE_PORT", to_port, 3010, "Port of the store service."),
    Var("AUTH_PORT", to_port, 3011, "Port of the auth service."),
    Var("PROXY_PORT", to_port, 3012, "Port of the proxy service."),
    Var("DASHBOARD_PORT", to_port, 3013, "Port of the dashboard service (reached through the gateway at /dashboard)."),
    Var("STORE_URL", to_url, None, "How other processes reach the store (default http://127.0.0.1:STORE_PORT)."),
    Var("AUTH_URL", to_url, None, "How other processes reach auth (default http://127.0.0.1:AUTH_PORT)."),
    Var("PROXY_URL", to_url, None, "How the gateway reaches the proxy (default http://127.0.0.1:PROXY_PORT)."),
    Var("DASHBOARD_URL", to_url, None,
        "How the gateway reaches the dashboard (default http://127.0.0.1:DASHBOARD_PORT)."),
    Var("DATA_DIR", to_str, "./data", "Where the local SQLite database lives."),
    Var("PROVIDERS_FILE", to_str, None,
        "A Nango-format providers.yaml that extends the built-in catalogue (same names replace built-in entries)."),
    Var("PROVIDERS_FILE_MODE", to_providers_file_mode, "extend",
        "extend: PROVIDERS_FILE adds to the built-in catalogue; replace: PROVIDERS_FILE is the whole catalogue."),
    Var("DEFAULT_PLAN", to_plan, "free", "Plan of the default account: free, starter, growth or enterprise."),
    Var("RATE_LIMIT_FAIL_OPEN", to_bool, True,
        "When Redis is unreachable: true lets requests through unlimited, false refuses them with 503."),
    Var("AUTH_FAILURE_LIMIT", to_int, 30, "Failed authentications allowed per client address per minute."),
    Var("TRUSTED_PROXIES", to_int, 0,
        "How many reverse proxies in front of the gateway set X-Forwarded-For (0: use the peer address)."),
    Var("WORKERS", to_positive_int, 1, "gunicorn worker processes per service."),
    Var("THREADS", to_positive_int, 8, "Threads per gunicorn worker of the thread-based processes (store, auth)."),
    Var("LOG_LEVEL", to_log_level, "info",
        "debug, info, warning or error; at info and debug every process logs one access line per request."),
    Var("LOG_FORMAT", to_log_format, "text",
        "text (readable lines) or json (one JSON object per line: time, process, level, logger, message, "
        "request_id; access lines too)."),
    Var("STORE_READ_CACHE_ENTRIES", to_non_negative_int, 10000,
        "Credential-read answers each store worker keeps in memory, used only with NANGO_REDIS_URL (whose "
        "change versions keep them current on every replica); 0 turns the cache off."),
    Var("LOG_SQL", to_bool, False,
        "Log every SQL statement the store runs, with its parameters (debugging only: not on real data)."),
    Var("GRACEFUL_TIMEOUT", to_positive_int, 10,
        "Seconds a stopping process lets requests in flight finish before its workers are killed "
        "(`make up` uses 1)."),
    Var("AUTHPORT_LAUNCH_TOKEN", to_str, None,
        "Set by `make up` for each start: its processes confirm it at /healthz, so the launcher never takes "
        "another instance for its own.", secret=True),
    Var("WORKER_CONNECTIONS", to_positive_int, 1000,
        "Concurrent requests per worker of the event-loop processes (gateway, proxy)."),
    Var("GATEWAY_HEADER_TIMEOUT", to_seconds, 10.0,
        "Seconds a client has to send a whole request head (from the connection, or from the first byte "
        "of a keep-alive request); a partial one is answered 408."),
    Var("GATEWAY_KEEPALIVE_TIMEOUT", to_seconds, 30.0,
        "Seconds an idle keep-alive connection to the gateway stays open waiting for the next request."),
    Var("GATEWAY_BODY_IDLE_TIMEOUT", to_seconds, 30.0,
        "Seconds a request body may pause between two reads (a slow but steady upload is never cut); "
        "a stalled one is answered 408."),
    Var("EGRESS_SOURCE_IPS", to_ip_list, (),
        "Comma-separated local addresses outbound calls leave from, in turn (default: the system's choice)."),
    Var("EGRESS_PROXY_URL", to_proxy_url, None,
        "Forward proxy (http://host:port) every outbound call goes through instead of connecting directly."),
    Var("EGRESS_PUBLIC_IPS", to_ip_list, (),
        "The public egress addresses customers allowlist, served at GET /egress-ips."),
    Var("OUTBOUND_ALLOW_CIDRS", to_cidr_list, (),
        "Comma-separated CIDRs outbound calls may reach although they are not public (e.g. 10.1.0.0/16)."),
    Var("NANGO_PROXY_BASE_URL_OVERRIDE_ENABLED", to_bool, False,
        "Accept the proxy's Base-Url-Override header (off by default: callers could aim credentials anywhere)."),
    Var("PROXY_CONNECT_TIMEOUT", to_seconds, 10.0, "Seconds to open a connection to an upstream API."),
    Var("PROXY_READ_TIMEOUT", to_seconds, 60.0, "Seconds an upstream API may stay silent while answering."),
    Var("PROXY_TOTAL_TIMEOUT", to_seconds, 240.0,
        "Seconds a whole proxied call may take, retries and body included (gateway waits 300)."),
    Var("PROXY_MAX_RESPONSE_BYTES", to_bytes, 2 << 30, "Largest upstream answer passed on (bytes, or 10MB, 2GiB)."),
    Var("PROXY_MAX_DECOMPRESSED_BYTES", to_bytes, 1 << 30, "Largest answer after decompression (Decompress: true)."),
    Var("PROXY_MAX_REPLAY_BYTES", to_bytes, 1 << 20,
        "Request bodies up to this size are kept so that retries and redirects can send them again."),
    Var("PROXY_MAX_RETRIES", to_int, 10, "Upper bound of the Retries header."),
    Var("PROXY_RETRY_BACKOFF", to_seconds, 1.0, "First wait of the exponential backoff between retries (seconds)."),
    Var("EGRESS_POOL_MAXSIZE", to_positive_int, 256, "Idle connections kept per upstream address."),
    Var("OPERATIONS_RETENTION_DAYS", to_non_negative_int, 30,
        "Days operation records are kept before the purge job deletes them (0: keep them forever)."),
    Var("PURGE_INTERVAL_SECONDS", to_non_negative_int, 3600,
        "Seconds between the store's purge rounds (deleted connections after 31 days, old operation records; "
        "0: no background rounds, run `python -m services.store.admin purge` instead)."),
    Var("WEBHOOK_RETRY_DELAYS", to_seconds_list, (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0),
        "Seconds auth waits before each retry of a webhook to a customer's backend; one attempt more than "
        "listed, then the webhook is marked failed (default: 9 attempts over about 3.7 hours)."),
    Var("WEBHOOK_TIMEOUT_SECONDS", to_seconds, 10.0,
        "Seconds one webhook attempt may take before it counts as failed."),
    Var("WEBHOOK_POLL_SECONDS", to_seconds, 1.0,
        "Seconds between an auth worker's looks for webhooks due (a flow's own webhook leaves at once)."),
    Var("WEBHOOK_LEASE_SECONDS", to_seconds, 60.0,
        "Seconds a webhook taken by an auth worker stays its own; after a crash another worker sends it "
        "again after this long (must exceed WEBHOOK_TIMEOUT_SECONDS)."),
)
BY_NAME = {var.name: var for var in VARIABLES}


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, Any]
    environment_keys: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def server_url(self) -> str:
        scheme = "https" if self.values["TLS_CERT_FILE"] else "http"
        return self.values["NANGO_SERVER_URL"] or f"{scheme}://localhost:{self.values['SERVER_PORT']}"

    @property
    def callback_url(self) -> str:
        return self.values["NANGO_CALLBACK_URL"] or f"{self.server_url}/oauth/callback"

    @property
    def connect_url(self) -> str:
        return self.values["NANGO_PUBLIC_CONNECT_URL"] or f"{self.server_url}/connect"

    def service_url(self, service: str) -> str:
        explicit = self.values[f"{service.upper()}_URL"]
        return explicit or f"http://127.0.0.1:{self.values[f'{service.upper()}_PORT']}"

    @property
    def database_url(self) -> str:
        return database_url(self)

    def pinned_secret_key(self, env_name: str) -> str | None:
        """Secret key pinned by NANGO_SECRET_KEY_<ENV> (or NANGO_SECRET_KEY for dev)."""
        key = self.environment_keys.get(env_name.lower())
        if key is None and env_name == "dev":
            key = self.values["NANGO_SECRET_KEY"]
        return key


def database_url(settings: Settings) -> str:
    url = settings.NANGO_DATABASE_URL or settings.DATABASE_URL
    if url:
        return url
    if settings.NANGO_DB_HOST:
        from urllib.parse import quote

        auth = quote(settings.NANGO_DB_USER, safe="")
        if settings.NANGO_DB_PASSWORD:
            auth += ":" + quote(settings.NANGO_DB_PASSWORD, safe="")
        ssl = "?sslmode=require" if settings.NANGO_DB_SSL else ""
        return f"postgresql://{auth}@{settings.NANGO_DB_HOST}:{settings.NANGO_DB_PORT}/{settings.NANGO_DB_NAME}{ssl}"
    return "sqlite:///" + str(Path(settings.DATA_DIR) / "authport.db")


def _coerce(var: Var, raw: str | None) -> Any:
    if raw is None or raw.strip() == "":
        return var.default
    try:
        return var.coerce(raw)
    except ValueError as exc:
        raise SettingsError(var.name, str(exc)) from None


def environment_keys(environ: Mapping[str, str]) -> dict[str, str]:
    """Keys pinned by NANGO_SECRET_KEY_<ENV>, by lower-case environment name."""
    pinned: dict[str, str] = {}
    for name, raw in environ.items():
        match = ENV_KEY_VAR.match(name)
        if match and raw.strip():
            try:
                pinned[match.group(1).lower()] = to_uuid4(raw)
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None
    return pinned


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every variable from `environ` (default os.environ); keyword overrides win (tests)."""
    environ = os.environ if environ is None else environ
    values = {var.name: _coerce(var, environ.get(var.name)) for var in VARIABLES}
    for name, value in overrides.items():
        if name not in BY_NAME:
            raise SettingsError(name, "not a known setting")
        values[name] = value
    if bool(values["TLS_CERT_FILE"]) != bool(values["TLS_KEY_FILE"]):
        raise SettingsError("TLS_CERT_FILE" if values["TLS_KEY_FILE"] else "TLS_KEY_FILE",
                            "TLS needs both TLS_CERT_FILE and TLS_KEY_FILE")
    if values["NANGO_ENCRYPTION_KEYS_OLD"] and not values["NANGO_ENCRYPTION_KEY"]:
        raise SettingsError("NANGO_ENCRYPTION_KEYS_OLD",
                            "decrypt-only keys need NANGO_ENCRYPTION_KEY, the key to re-encrypt under")
    return Settings(values=values, environment_keys=environment_keys(environ))


def markdown_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in VARIABLES:
        default = "" if var.default in (None, (), "") else f"`{var.default}`"
        rows.append(f"| `{var.name}` | {default} | {var.help} |")
    rows.append("| `NANGO_SECRET_KEY_<ENV>` | | Pins the secret key of environment `<env>` (e.g. `_PROD`). |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
