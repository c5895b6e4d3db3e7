"""Operator commands on the store's database: `python -m services.store.admin --help`.

Reads its settings from the environment exactly like the store process (same database, same
keys), and opens the database the same way: it refuses a key that cannot read the data, and
brings the schema up to date first. Errors are one line on stderr; bad input, and a request
that cannot be done as given (unknown name, duplicate, last key), exit with 2.

    accounts create NAME [--plan P] [--rate-limit N]   (dev and prod with their keys, printed once)
    accounts set-plan NAME PLAN [--rate-limit N]       (applies within the current minute)
    accounts list
    env-var set --env dev NAME VALUE     (VALUE `-` reads it from stdin, keeping it out of `ps`)
    env-var delete --env dev NAME
    env-var list --env dev               (names only: values are secrets)
    environments list
    keys show --env dev                  (the environment's default secret key and public key)
    keys list|create|rotate|revoke --env dev [--name N]   (named secret keys; rotate --kind public)
    webhook show --env dev | webhook set --env dev URL|--clear   (the auth webhook URL)
    hmac show|enable|disable|rotate --env dev   (the HMAC key public-key auth flows prove themselves with)
    encryption status                    (values per key id, to see a rotation through)
    encryption rotate                    (re-encrypt under NANGO_ENCRYPTION_KEY, online, in batches)
    operations list [--env dev] [--limit N]   (recent proxied calls and refreshes, JSON lines)
    purge [--now ISO8601]                (one purge round now; prints the counts as JSON)
    backup FILE                          (a consistent backup; secrets stay encrypted)
    restore FILE [--force]               (into the configured database, then migrated and checked)

Commands that take --env also take --account (default: the default account).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from common.crypto import Cipher, DecryptionError
from common.errors import ApiError
from common.providers import Catalogue, CatalogueError
from common.settings import SettingsError, load_settings
from common.startup import StartupError
from services.store import (
    accounts,
    admin_accounts,
    admin_backup,
    admin_hmac,
    admin_operations,
    admin_purge,
    admin_webhooks,
    atrest,
    envvars,
)
from services.store.admin_accounts import environment
from services.store.app import prepare_database
from services.store.backup import BackupError
from services.store.bootstrap import DEFAULT_ACCOUNT
from services.store.context import StoreContext
from services.store.migrations import write_transaction

PROG = "python -m services.store.admin"


class UsageError(Exception):
    """Bad input: exit status 2."""


class Failed(Exception):
    """The command could not do what was asked: exit status 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line instead of argparse's usage block."""
        raise UsageError(f"{message} (see {PROG} --help)")


def read_value(given: str) -> str:
    if given != "-":
        return given
    value = sys.stdin.read()
    # `echo secret | …` and heredocs end with a newline that is not part of the value.
    return value[:-1] if value.endswith("\n") else value


def env_var_set(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    value = read_value(args.value)
    try:
        with write_transaction(db):
            envvars.set_value(ctx, env.id, args.name, value)
    except ValueError as exc:
        raise UsageError(f"{args.name!r}: {exc}") from None
    print(f"set {args.name} in {env.name}")


def env_var_delete(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    if not envvars.delete(env.id, args.name):
        raise Failed(f"environment {env.name} has no variable {args.name}")
    print(f"deleted {args.name} from {env.name}")


def env_var_list(ctx: StoreContext, db, args) -> None:
    for name in envvars.names(environment(args.account, args.env).id):
        print(name)


def environments_list(ctx: StoreContext, db, args) -> None:
    for name in accounts.summary(accounts.find(args.account)).environments:
        print(name)


def encryption_status(ctx: StoreContext, db, args) -> None:
    print(f"primary key id: {ctx.cipher.primary_id or '(none: plaintext)'}")
    for column, per_key in atrest.status(db).items():
        counts = " ".join(f"{name}={n}" for name, n in sorted(per_key.items())) or "empty"
        print(f"{column}: {counts}")


def encryption_rotate(ctx: StoreContext, db, args) -> None:
    if not ctx.cipher.enabled:
        raise UsageError("NANGO_ENCRYPTION_KEY is not set: there is no key to encrypt under")
    done = atrest.upgrade(db, ctx.cipher, batch=args.batch,
                          progress=lambda column, n: print(f"{column}: {n} re-encrypted", flush=True))
    print(f"re-encrypted {done} value(s) under key id {ctx.cipher.primary_id}")


Command = Callable[[StoreContext, object, argparse.Namespace], None]


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Authport store administration.")
    groups = parser.add_subparsers(dest="group", required=True,
                                   metavar="{accounts,env-var,environments,keys,webhook,hmac,encryption,operations,"
                                           "purge,connections,backup,restore}")

    def command(group: argparse.ArgumentParser, name: str, run: Command, helptext: str, env: bool = False):
        sub = group.add_parser(name, help=helptext, description=helptext)
        sub.set_defaults(run=run)
        if env:
            sub.add_argument("--env", required=True, help="environment name, e.g. dev or prod")
            sub.add_argument("--account", default=DEFAULT_ACCOUNT, help="account name (default: default)")
        return sub

    admin_accounts.register(groups, command)
    env_var = groups.add_parser("env-var", help="environment variables").add_subparsers(dest="action", required=True)
    sub = command(env_var, "set", env_var_set, "set a variable (encrypted at rest)", env=True)
    sub.add_argument("name")
    sub.add_argument("value", help="the value, or - to read it from stdin")
    command(env_var, "delete", env_var_delete, "delete a variable", env=True).add_argument("name")
    command(env_var, "list", env_var_list, "list variable names (values are not shown)", env=True)
    envs = groups.add_parser("environments", help="environments").add_subparsers(dest="action", required=True)
    sub = command(envs, "list", environments_list, "list an account's environments")
    sub.add_argument("--account", default=DEFAULT_ACCOUNT, help="account name (default: default)")
    key_cmds = groups.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    admin_accounts.register_keys(key_cmds, command)
    admin_webhooks.register(groups, command)
    admin_hmac.register(groups, command)
    enc = groups.add_parser("encryption", help="encryption at rest").add_subparsers(dest="action", required=True)
    command(enc, "status", encryption_status, "count stored secrets per key id")
    sub = command(enc, "rotate", encryption_rotate, "re-encrypt every stored secret under NANGO_ENCRYPTION_KEY")
    sub.add_argument("--batch", type=int, default=atrest.BATCH, help="rows per transaction")
    admin_operations.register(groups, command)
    admin_purge.register(groups, command)
    admin_backup.register(groups, command)
    return parser


def run(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if getattr(args, "before_open", False):  # restore: the database must not be opened (migrated) first
        args.run(settings, args)
        return
    cipher = Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD)
    ctx = StoreContext(settings=settings, cipher=cipher, catalogue=Catalogue.configured(settings))
    db = prepare_database(settings, cipher)
    with db.connection_context():
        args.run(ctx, db, args)


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except (UsageError, SettingsError, StartupError, CatalogueError) as exc:
        print(f"authport admin: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:  # the request cannot be done as given: one line, the message only
        print(f"authport admin: {exc.message}", file=sys.stderr)
        return 2
    except (Failed, DecryptionError, BackupError) as exc:
        print(f"authport admin: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
