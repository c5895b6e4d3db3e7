"""Admin commands of deletion and its undoing (wired into `python -m services.store.admin`):

    purge [--now ISO8601]   one purge round now; prints what was deleted as one JSON object
    connections restore --env dev --integration KEY CONNECTION_ID   (deleted less than 31 days ago)
    connections purge --env dev --integration KEY CONNECTION_ID     (for good, live or deleted)
    connections purge-end-user --env dev END_USER_ID                (every connection of one end user)

The connection commands do what the API's restore and purge routes do, recorded with actor `admin`.

The store's own rounds run every PURGE_INTERVAL_SECONDS; this is for an operator who set that to
0, or wants a round at once. `--now` purges as if it were that moment (UTC unless an offset is
given). When another process holds the purge lock, nothing is deleted and "skipped" is true.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from services.store import lifecycle, purge
from services.store.actors import ADMIN
from services.store.admin_accounts import environment
from services.store.context import StoreContext


def moment(raw: str) -> datetime:
    try:
        return purge.naive_utc(datetime.fromisoformat(raw))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2030-01-31T12:00:00Z, got {raw!r}") \
            from None


def purge_now(ctx: StoreContext, db, args) -> None:
    print(json.dumps(purge.purge(ctx.settings, args.now), separators=(",", ":")), flush=True)


def restore(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    lifecycle.restore(ctx, env.id, args.integration, args.connection_id, actor=ADMIN)
    print(f"restored {args.connection_id} of {args.integration} in {env.name}")


def purge_connection(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    rows = lifecycle.purge_connection(ctx, env.id, args.integration, args.connection_id, actor=ADMIN)
    print(json.dumps({"connections": 1, "rows": rows}, separators=(",", ":")), flush=True)


def purge_end_user(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    counts = lifecycle.purge_end_user(ctx, env.id, args.end_user_id, actor=ADMIN)
    print(json.dumps(counts, separators=(",", ":")), flush=True)


def register(groups, command) -> None:
    group = groups.add_parser("purge", help="delete what is past keeping")
    group.set_defaults(run=purge_now)
    group.add_argument("--now", type=moment, default=None,
                       help="purge as if it were this moment (ISO 8601, default: now)")
    conns = groups.add_parser("connections", help="restore or purge connections").add_subparsers(
        dest="action", required=True)
    for name, run, helptext in (("restore", restore, "restore a connection deleted less than 31 days ago"),
                                ("purge", purge_connection, "purge a connection for good, live or deleted")):
        sub = command(conns, name, run, helptext, env=True)
        sub.add_argument("--integration", required=True, help="the integration's unique key (provider_config_key)")
        sub.add_argument("connection_id")
    sub = command(conns, "purge-end-user", purge_end_user, "purge every connection of one end user (GDPR)", env=True)
    sub.add_argument("end_user_id")
