"""Admin command reading operation records back (wired into `python -m services.store.admin`):

    operations list [--env dev] [--account A] [--limit N]   newest first, one JSON object a line

Nango's public API has no endpoint for its logs (its dashboard reads them), so this is how an
operator sees what the proxy and the refreshes did (the API has GET /logs, services/store/log_views.py).
Records hold no secret, so all is shown.
"""

from __future__ import annotations

import argparse
import json

from services.store import operations
from services.store.admin_accounts import environment
from services.store.bootstrap import DEFAULT_ACCOUNT
from services.store.context import StoreContext
from services.store.formatters import iso
from services.store.models import Environment, Operation

COLUMNS = ("kind", "actor", "request_id", "provider_config_key", "connection_id", "success", "error_code", "method",
           "path", "status", "outcome", "attempts", "egress_address", "bytes", "duration_ms", "detail")


def line(record: Operation, environments: dict[int, str]) -> str:
    shown = {"id": record.id, "created_at": iso(record.created_at),
             "environment": environments.get(record.environment_id)}
    shown.update({name: getattr(record, name) for name in COLUMNS})
    return json.dumps(shown, separators=(",", ":"))


def operations_list(ctx: StoreContext, db, args) -> None:
    env_id = environment(args.account, args.env).id if args.env else None
    names = {env.id: env.name for env in Environment.select(Environment.id, Environment.name)}
    for record in operations.recent(env_id, args.limit):
        print(line(record, names))


def positive(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000, got {raw!r}")
    return int(raw)


def register(groups, command) -> None:
    ops: argparse._SubParsersAction = groups.add_parser("operations", help="operation records").add_subparsers(
        dest="action", required=True)
    sub = command(ops, "list", operations_list, "print recent operation records as JSON lines, newest first")
    sub.add_argument("--env", "--environment", dest="env", help="only this environment (default: all)")
    sub.add_argument("--account", default=DEFAULT_ACCOUNT, help="account of --env (default: default)")
    sub.add_argument("--limit", type=positive, default=50, help="how many records (default 50)")
