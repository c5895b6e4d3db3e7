"""Admin commands on an environment's auth webhook (wired into `python -m services.store.admin`):

    webhook show --env dev          the URL (or "(none)"); the signing key is the default secret key
    webhook set --env dev URL       set it; `webhook set --env dev --clear` removes it
    webhooks list [--state S]       the outbox: pending and failed webhooks (or --state delivered/all),
                                    newest first, one JSON object a line; no body, no URL, no key
    webhooks retry ID               queue a failed webhook again, with all its attempts ahead of it
"""

from __future__ import annotations

import argparse
import json

from common.errors import ApiError
from services.store import webhook_outbox, webhooks
from services.store.admin_accounts import environment
from services.store.admin_operations import positive
from services.store.context import StoreContext
from services.store.formatters import iso
from services.store.models import Environment, WebhookOutbox

STATES = {"open": ("pending", "failed"), "pending": ("pending",), "failed": ("failed",),
          "delivered": ("delivered",), "all": ("pending", "failed", "delivered")}


def webhook_show(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    print(env.webhook_url or "(none)")


def webhook_set(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    if args.clear == (args.url is not None):
        raise ApiError("give either a URL or --clear")
    webhooks.set_url(env, None if args.clear else args.url)
    print(f"webhook of {args.account}/{env.name}: {env.webhook_url or '(none)'}")


def outbox_line(row: WebhookOutbox, environments: dict[int, str]) -> str:
    return json.dumps({
        "id": row.id, "state": row.state, "environment": environments.get(row.environment_id),
        "type": row.event_type, "operation": row.operation, "provider_config_key": row.provider_config_key,
        "connection_id": row.connection_id, "attempts": row.attempts, "last_status": row.last_status,
        "last_error": row.last_error, "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
        "last_attempt_at": iso(row.last_attempt_at), "delivered_at": iso(row.delivered_at),
        "leased_by": row.leased_by}, separators=(",", ":"))


def outbox_list(ctx: StoreContext, db, args) -> None:
    names = {env.id: env.name for env in Environment.select(Environment.id, Environment.name)}
    for row in webhook_outbox.listing(STATES[args.state], args.limit):
        print(outbox_line(row, names))


def outbox_retry(ctx: StoreContext, db, args) -> None:
    if not webhook_outbox.retry(args.id):
        raise ApiError(f"no failed webhook with id {args.id} (see webhooks list --state failed)")
    print(f"webhook {args.id} queued again")


def register(groups, command) -> None:
    hook: argparse._SubParsersAction = groups.add_parser("webhook", help="auth webhook URL").add_subparsers(
        dest="action", required=True)
    command(hook, "show", webhook_show, "show the environment's webhook URL", env=True)
    sub = command(hook, "set", webhook_set, "set (or --clear) the environment's webhook URL", env=True)
    sub.add_argument("url", nargs="?", help="an http(s) URL")
    sub.add_argument("--clear", action="store_true", help="remove the URL: no auth webhook is sent")
    outbox: argparse._SubParsersAction = groups.add_parser("webhooks", help="webhook outbox").add_subparsers(
        dest="action", required=True)
    sub = command(outbox, "list", outbox_list, "print queued webhooks as JSON lines, newest first")
    sub.add_argument("--state", choices=sorted(STATES), default="open",
                     help="open (pending and failed, the default), pending, failed, delivered or all")
    sub.add_argument("--limit", type=positive, default=50, help="how many (default 50)")
    sub = command(outbox, "retry", outbox_retry, "queue a failed webhook again")
    sub.add_argument("id", type=positive, help="the webhook's id, from webhooks list")
