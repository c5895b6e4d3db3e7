"""Tests of the store; shared here: reading raw storage and running a process that must not start."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from tests.support.databases import raw_rows
from tests.support.system import ROOT


def raw_execute(database_url: str, sql: str) -> None:
    """Change the database behind Authport's back (tests of tampering). Committed on both backends:
    `raw_rows` does not commit on SQLite, so an UPDATE through it is silently rolled back."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url[len("sqlite:///"):])
        try:
            with conn:
                conn.execute(sql)
        finally:
            conn.close()
    else:
        raw_rows(database_url, sql)


def table_names(database_url: str) -> list[str]:
    if database_url.startswith("sqlite:"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
               "ORDER BY table_name")
    return [row[0] for row in raw_rows(database_url, sql)]


def raw_dump(database_url: str) -> dict[str, list[tuple]]:
    """Every row of every table, every column as text, read without Authport's code."""
    return {table: sorted(tuple("" if v is None else str(v) for v in row)
                          for row in raw_rows(database_url, f'SELECT * FROM "{table}"'))
            for table in table_names(database_url)}


def raw_text(database_url: str) -> str:
    """The whole database as one string, to search for anything that should not be there."""
    return "\n".join(f"{table}: {row}" for table, rows in raw_dump(database_url).items() for row in rows)


def encrypted_values(database_url: str) -> list[str]:
    """Every non-null value of every encrypted column."""
    columns = {"api_keys": "secret_enc", "integrations": "client_secret_enc", "connections": "credentials_enc",
               "environment_variables": "value_enc"}
    values = [row[0] for table, column in columns.items()
              for row in raw_rows(database_url, f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]
    values += [row[0] for row in raw_rows(database_url, "SELECT webhook_secret_enc FROM integrations "
                                                        "WHERE webhook_secret_enc IS NOT NULL")]
    return values


def run_until_exit(module: str, env: dict[str, str], timeout: float = 60) -> tuple[int, list[str]]:
    """Run `python -m module` that is expected to stop by itself; its exit status and output lines."""
    done = subprocess.run([sys.executable, "-m", module], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return done.returncode, lines


def assert_refused(module: str, env: dict[str, str], *needles: str) -> str:
    """The process exits with status 2 after exactly one line, naming every needle, no traceback."""
    status, lines = run_until_exit(module, env)
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines
    return lines[0]


def admin(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the admin CLI (`python -m services.store.admin ...`) as an operator would."""
    return subprocess.run([sys.executable, "-m", "services.store.admin", *args], env=env, cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)
