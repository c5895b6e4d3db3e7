"""The `authport` command (a console script; also `python -m common.cli`).

    authport up        run the whole system locally (what `make up` runs)
    authport admin …   the store's admin commands (`authport admin --help`)
    authport status    each process's health and version, the database, Redis, the encryption key id

Every subcommand reads `.env` in the working directory as the launcher does (a variable already set
in the shell wins), so a README example runs as printed after `make up`. Only `up` writes `.env`
(its generated secrets, on first run). A refusal is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import requests

from common import envfile
from common.identity import INTERNAL_KEY_HEADER
from common.settings import Settings, SettingsError, load_settings
from common.version import VERSION

PROCESSES = ("gateway", "store", "auth", "proxy", "dashboard")


def environment(cwd: Path) -> dict[str, str]:
    """`.env` of `cwd` under the shell's environment (the shell wins), without writing anything."""
    return {**envfile.read(cwd / ".env"), **os.environ}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authport", description="Authport: run it, administer it, check it.")
    parser.add_argument("--version", action="version", version=f"authport {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,admin,status}")
    commands.add_parser("up", help="run the whole system locally (what `make up` runs)",
                        description="Start gateway, store, auth and proxy on the settings of .env and the "
                                    "environment; Ctrl-C stops them.")
    commands.add_parser("admin", help="the store's admin commands (authport admin --help)", add_help=False)
    commands.add_parser("status", help="each process's health and version, the database, Redis, the key id",
                        description="Ask each local process for its readiness (with the internal key), and "
                                    "report the database, Redis and the encryption key id in use. Exit status "
                                    "0 when all answer, 1 otherwise.")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["admin"]:  # everything after `admin` is the admin parser's, --help included
        return admin(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "up":
        from common import launcher

        return launcher.main()
    return status()


def admin(argv: list[str]) -> int:
    from services.store import admin as store_admin

    for name, value in envfile.read(Path.cwd() / ".env").items():
        os.environ.setdefault(name, value)
    store_admin.PROG = "authport admin"
    return store_admin.main(argv)


def process_url(settings: Settings, name: str) -> str:
    if name == "gateway":
        host = settings.GATEWAY_HOST if settings.GATEWAY_HOST not in ("0.0.0.0", "::", "") else "127.0.0.1"
        scheme = "https" if settings.TLS_CERT_FILE else "http"
        return f"{scheme}://{host}:{settings.SERVER_PORT}"
    return settings.service_url(name)


def readiness(settings: Settings, name: str) -> tuple[bool, str]:
    """(up, what to print) for one process, from its /readyz as an internal caller sees it."""
    url = process_url(settings, name)
    try:
        with warnings.catch_warnings():  # a local probe of our own gateway: its certificate's name may differ
            warnings.simplefilter("ignore")
            answer = requests.get(url + "/readyz", headers={INTERNAL_KEY_HEADER: settings.INTERNAL_API_KEY or ""},
                                  timeout=3, verify=not url.startswith("https"))
    except requests.RequestException:
        return False, f"{url}  down (no answer)"
    try:
        body = answer.json()
    except ValueError:
        return False, f"{url}  answers {answer.status_code}, not Authport"
    checks = body.get("checks") or {}
    detail = ", ".join(f"{k} {v}" for k, v in checks.items())
    version = body.get("version", "?")
    ok = answer.status_code == 200
    return ok, f"{url}  {'ready' if ok else 'not ready'}  version {version}" + (f"  ({detail})" if detail else "")


def database_line(settings: Settings) -> tuple[bool, str]:
    url = settings.database_url
    shown = url.split("@")[-1] if "@" in url else url  # never the password
    try:
        if url.startswith("sqlite"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                return False, f"{shown}  no database file yet (authport up creates it)"
            import sqlite3

            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
                db.execute("SELECT 1")
        else:
            import psycopg2

            psycopg2.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - reported, one line: the database is what is checked
        return False, f"{shown}  unreachable ({type(exc).__name__})"
    return True, f"{shown}  ok"


def redis_line(settings: Settings) -> tuple[bool, str]:
    if not settings.NANGO_REDIS_URL:
        return True, "not configured (limits and caches per process)"
    import redis

    shown = settings.NANGO_REDIS_URL.split("@")[-1]
    try:
        redis.Redis.from_url(settings.NANGO_REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return False, f"{shown}  unreachable ({type(exc).__name__})"
    return True, f"{shown}  ok"


def status() -> int:
    try:
        settings = load_settings(environment(Path.cwd()))
    except SettingsError as exc:
        print(f"authport status: {exc}", file=sys.stderr)
        return 2
    from common.crypto import Cipher

    rows = [(name, *readiness(settings, name)) for name in PROCESSES]
    rows.append(("database", *database_line(settings)))
    rows.append(("redis", *redis_line(settings)))
    for name, _ok, line in rows:
        print(f"{name:9} {line}")
    key_id = Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD).primary_id
    print(f"{'key id':9} {key_id or '(none: NANGO_ENCRYPTION_KEY is not set, secrets are stored in plaintext)'}")
    return 0 if all(ok for _name, ok, _line in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
