"""`admin backup FILE` and `admin restore FILE [--force]` (services/store/backup.py says what they do)."""

from __future__ import annotations

import json
from pathlib import Path

from services.store import backup


def backup_now(ctx, db, args) -> None:
    manifest = backup.backup(ctx.settings, db, Path(args.file))  # BackupError: one line, exit 1
    print(json.dumps({"file": args.file, **manifest}))
    print("keep it with the encryption key (.env: NANGO_ENCRYPTION_KEY), but not in the same place", flush=True)


def restore_now(settings, args) -> None:
    """Run before the database is opened: the store's start-up then runs on what was restored."""
    from services.store.app import prepare_database

    manifest = backup.restore(settings, Path(args.file), force=args.force)
    from common.crypto import Cipher

    prepare_database(settings, Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD))
    print(json.dumps({"restored": args.file, **manifest}))


def register(groups, command) -> None:
    sub = groups.add_parser("backup", help="write a backup of the database (secrets stay encrypted)",
                            description="Write a consistent backup of the database to FILE (a new file, 0600).")
    sub.set_defaults(run=backup_now)
    sub.add_argument("file")
    sub = groups.add_parser("restore", help="restore a backup into the configured database (stop the store first)",
                            description="Restore FILE into the database NANGO_DATABASE_URL names, then migrate it "
                                        "and check that the encryption key reads it.")
    sub.set_defaults(run=restore_now, before_open=True)
    sub.add_argument("file")
    sub.add_argument("--force", action="store_true", help="replace a database that is not empty")
