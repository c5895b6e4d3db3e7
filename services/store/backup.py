"""Backup and restore of the store's database (`authport admin backup FILE`, `… restore FILE`).

A backup is one gzipped tar, written 0600: `manifest.json` (Authport's version, the backend, the
schema versions, the encryption key ids its secrets are under, when) and the data — an online,
consistent copy of the SQLite file (sqlite3's backup API) or a `pg_dump --format=custom` of the
Postgres database. Secrets stay encrypted in it: a backup without the `.env` (or the secret store)
holding NANGO_ENCRYPTION_KEY cannot be read, by anyone, you included. Keep both, apart.

A restore refuses, changing nothing, when the configured keys cannot decrypt the backup's secrets,
when the backend differs, or when the target database is not empty (unless `--force`, which
replaces it). Then the store's own start-up runs on it: migrations up to this version, the
encryption check. Stop the store processes while restoring.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from common.crypto import Cipher
from common.settings import Settings
from common.version import VERSION

MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(Exception):
    """A backup or restore that cannot be done as asked (one line for the operator)."""


def _backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _pg(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and an environment carrying it (never on a command line)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(scheme="postgresql")), env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (it comes with the PostgreSQL client tools)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupError(f"{command[0]} failed: {last[:300]}")


def _key_ids(db) -> list[str]:
    from services.store import atrest

    found = set()
    for per_key in atrest.status(db).values():
        found |= {name for name, n in per_key.items() if n and name not in ("plaintext", "unknown")}
    return sorted(found)


def backup(settings: Settings, db, target: Path) -> dict:
    """Write the backup to `target` (not overwritten if it exists); answers its manifest."""
    from services.store import migrations

    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name")
    url = settings.database_url
    manifest = {"format": FORMAT, "authport_version": VERSION, "backend": _backend(url),
                "schema_versions": sorted(migrations.applied_versions(db)), "key_ids": _key_ids(db),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="authport-backup-") as tmp:
        if manifest["backend"] == "sqlite":
            data = Path(tmp) / "authport.db"
            source, copy = sqlite3.connect(_sqlite_path(url)), sqlite3.connect(data)
            try:
                source.backup(copy)  # a consistent snapshot, while the store keeps writing
            finally:
                copy.close()
                source.close()
        else:
            data = Path(tmp) / "authport.pgdump"
            plain, env = _pg(url)
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={data}", plain], env)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:gz") as archive:
            raw = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(raw), int(datetime.now(UTC).timestamp())
            archive.addfile(info, io.BytesIO(raw))
            archive.add(data, arcname=data.name)
    return manifest


def read_manifest(archive: tarfile.TarFile) -> dict:
    try:
        manifest = json.load(archive.extractfile(MANIFEST))
    except (KeyError, ValueError, AttributeError):
        raise BackupError("not an Authport backup (no readable manifest.json)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def restore(settings: Settings, source: Path, *, force: bool = False) -> dict:
    """Put the backup at `source` in the configured database; answers its manifest."""
    url = settings.database_url
    try:
        archive = tarfile.open(source, mode="r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {source}: {exc}") from None
    with archive, tempfile.TemporaryDirectory(prefix="authport-restore-") as tmp:
        manifest = read_manifest(archive)
        if manifest["backend"] != _backend(url):
            raise BackupError(f"this backup is of a {manifest['backend']} database; NANGO_DATABASE_URL names "
                              f"a {_backend(url)} one")
        cipher = Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD)
        missing = [kid for kid in manifest["key_ids"] if kid not in cipher.key_ids]
        if missing:
            raise BackupError(f"this backup's secrets are encrypted under key id(s) {', '.join(missing)}, which "
                              "NANGO_ENCRYPTION_KEY / NANGO_ENCRYPTION_KEYS_OLD do not hold; set the key of the "
                              "backup's .env, then restore")
        name = "authport.db" if manifest["backend"] == "sqlite" else "authport.pgdump"
        member = archive.getmember(name)
        if not member.isfile():
            raise BackupError(f"{name} in the backup is not a file")
        archive.extract(member, tmp, filter="data")
        data = Path(tmp) / name
        if manifest["backend"] == "sqlite":
            _restore_sqlite(url, data, force)
        else:
            _restore_postgres(url, data, force)
    return manifest


def _restore_sqlite(url: str, data: Path, force: bool) -> None:
    path = _sqlite_path(url)
    if path.exists() and not force and _sqlite_tables(path):
        raise BackupError(f"{path} holds a database; restore into a new path, or pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".restoring")
    source, copy = sqlite3.connect(data), sqlite3.connect(staged)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(staged, path)


def _sqlite_tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        conn.close()


def _restore_postgres(url: str, data: Path, force: bool) -> None:
    import psycopg2

    plain, env = _pg(url)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        tables = cur.fetchone()[0]
    conn.close()
    if tables and not force:
        raise BackupError("the database NANGO_DATABASE_URL names holds tables; restore into an empty database, "
                          "or pass --force to replace what is there")
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={plain}"]
    if tables:
        command[1:1] = ["--clean", "--if-exists"]
    _run([*command, str(data)], env)
