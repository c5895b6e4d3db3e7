"""Admin commands on an environment's auth webhook (wired into `python -m services.store.admin`):

    webhook show --env dev          the URL (or "(none)"); the signing key is the default secret key
    webhook set --env dev URL       set it; `webhook set --env dev --clear` removes it
"""

from __future__ import annotations

import argparse

from common.errors import ApiError
from services.store import webhooks
from services.store.admin_accounts import environment
from services.store.context import StoreContext


def webhook_show(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    print(env.webhook_url or "(none)")


def webhook_set(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    if args.clear == (args.url is not None):
        raise ApiError("give either a URL or --clear")
    webhooks.set_url(env, None if args.clear else args.url)
    print(f"webhook of {args.account}/{env.name}: {env.webhook_url or '(none)'}")


def register(groups, command) -> None:
    hook: argparse._SubParsersAction = groups.add_parser("webhook", help="auth webhook URL").add_subparsers(
        dest="action", required=True)
    command(hook, "show", webhook_show, "show the environment's webhook URL", env=True)
    sub = command(hook, "set", webhook_set, "set (or --clear) the environment's webhook URL", env=True)
    sub.add_argument("url", nargs="?", help="an http(s) URL")
    sub.add_argument("--clear", action="store_true", help="remove the URL: no auth webhook is sent")
