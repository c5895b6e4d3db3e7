"""Admin commands on accounts, plans and API keys (wired into `python -m services.store.admin`).

Every refusal raises an ApiError, which the CLI prints as one line and exits with status 2.
Each committed change is announced to the running gateways (the keys epoch in Redis), so a
rotated or revoked key fails on every gateway at once and a new plan applies in the current
window. Without Redis the single local gateway notices within 2 seconds.
"""

from __future__ import annotations

import argparse

from common.errors import ApiError
from services.store import accounts, keys
from services.store.context import StoreContext
from services.store.formatters import iso
from services.store.models import Environment
from services.store.notify import KeysEpoch

DEFAULT_PLAN_NOTE = ("DEFAULT_PLAN sets the plan of the default account when it is created (first start) only; "
                     "afterwards change it here, e.g. `accounts set-plan default growth`: a restart never undoes it.")


def environment(account_name: str, env_name: str) -> Environment:
    account = accounts.find(account_name)
    env = Environment.get_or_none((Environment.account == account) & (Environment.name == env_name))
    if env is None:
        known = ", ".join(accounts.summary(account).environments)
        raise ApiError(f"unknown environment {env_name!r} of account {account.name!r} (known: {known or 'none'})")
    return env


def announce(ctx: StoreContext) -> None:
    epoch = KeysEpoch.from_settings(ctx.settings)
    epoch.bump()
    epoch.close()


def where(args) -> str:
    return f"{args.account}/{args.env}"


def accounts_create(ctx: StoreContext, db, args) -> None:
    created = accounts.create(ctx.cipher, args.name, args.plan, args.rate_limit)
    announce(ctx)
    summary = accounts.summary(accounts.find(args.name))
    print(f"created account {summary.name} (plan {summary.plan}, {summary.rate_limit} requests per minute); "
          "its keys are shown this once:")
    for new in created:
        print(f"{new.environment} {new.kind}_key: {new.key}")


def accounts_set_plan(ctx: StoreContext, db, args) -> None:
    summary = accounts.set_plan(args.name, args.plan, args.rate_limit)
    announce(ctx)
    print(f"account {summary.name}: plan {summary.plan}, {summary.rate_limit} requests per minute")


def accounts_list(ctx: StoreContext, db, args) -> None:
    rows = [("NAME", "PLAN", "LIMIT", "ENVIRONMENTS")]
    rows += [(s.name, s.plan, str(s.rate_limit), ",".join(s.environments)) for s in accounts.list_all()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])


def keys_show(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    for kind in ("secret", "public"):
        row = keys.live_key(env, kind)
        print(f"{kind}_key: {keys.reveal(ctx.cipher, row) if row else '(none)'}")


def keys_list(ctx: StoreContext, db, args) -> None:
    rows = [("NAME", "KIND", "CREATED_AT", "LAST_USED_AT", "REVOKED_AT")]
    for row in keys.list_keys(environment(args.account, args.env).id):
        rows.append((row.name, row.kind, *(iso(t) or "-" for t in (row.created_at, row.last_used_at, row.revoked_at))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def keys_create(ctx: StoreContext, db, args) -> None:
    row, secret = keys.add_secret_key(ctx.cipher, environment(args.account, args.env).id, args.name)
    announce(ctx)
    print(f"created secret key {row.name!r} of {where(args)}; it is shown this once:")
    print(f"secret_key: {secret}")


def keys_rotate(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    if args.kind == "public" and args.name != "default":
        raise ApiError("an environment has one public key, named default: leave out --name")
    row, secret = keys.rotate(ctx.cipher, env.id, args.kind, args.name)
    announce(ctx)
    print(f"rotated {args.kind} key {row.name!r} of {where(args)}; the old key is revoked. The new one, shown once:")
    print(f"{args.kind}_key: {secret}")


def keys_revoke(ctx: StoreContext, db, args) -> None:
    row = keys.revoke(environment(args.account, args.env).id, args.name)
    announce(ctx)
    print(f"revoked secret key {row.name!r} of {where(args)}")


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


def register(groups, command) -> None:
    """Add the `accounts` group and the key lifecycle commands to the CLI's parser."""
    group = groups.add_parser("accounts", help="accounts and their plans", description=DEFAULT_PLAN_NOTE)
    acc = group.add_subparsers(dest="action", required=True)
    sub = command(acc, "create", accounts_create,
                  "create an account with dev and prod environments and their keys (printed once)")
    sub.add_argument("name")
    sub.add_argument("--plan", choices=accounts.PLANS, default="free", help="default: free")
    sub.add_argument("--rate-limit", type=positive_int, help="requests per minute (enterprise only, required there)")
    sub = command(acc, "set-plan", accounts_set_plan,
                  "change an account's plan; it applies within the current minute. " + DEFAULT_PLAN_NOTE)
    sub.add_argument("name")
    sub.add_argument("plan", choices=accounts.PLANS)
    sub.add_argument("--rate-limit", type=positive_int, help="requests per minute (enterprise only, required there)")
    command(acc, "list", accounts_list, "list accounts: name, plan, requests per minute, environments")


def register_keys(key_cmds, command) -> None:
    command(key_cmds, "show", keys_show, "print the environment's default secret key and its public key", env=True)
    command(key_cmds, "list", keys_list, "list the environment's keys, live and revoked (no secrets)", env=True)
    sub = command(key_cmds, "create", keys_create, "create a named secret key (printed once)", env=True)
    sub.add_argument("--name", required=True, help=f"the key's name: {keys.NAME_RULE}")
    sub = command(key_cmds, "rotate", keys_rotate,
                  "replace a key with a new one (printed once); the old one fails at once on every gateway "
                  "(with Redis; within 2 s on a single gateway without it)", env=True)
    sub.add_argument("--name", default="default", help="which secret key (default: default)")
    sub.add_argument("--kind", choices=("secret", "public"), default="secret", help="default: secret")
    sub = command(key_cmds, "revoke", keys_revoke,
                  "revoke a named secret key (not the environment's last live one: rotate that instead)", env=True)
    sub.add_argument("--name", required=True)
