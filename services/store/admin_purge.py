"""Admin command running one purge round now (wired into `python -m services.store.admin`):

    purge [--now ISO8601]   prints what was deleted as one JSON object

The store's own rounds run every PURGE_INTERVAL_SECONDS; this is for an operator who set that to
0, or wants a round at once. `--now` purges as if it were that moment (UTC unless an offset is
given). When another process holds the purge lock, nothing is deleted and "skipped" is true.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from services.store import purge
from services.store.context import StoreContext


def moment(raw: str) -> datetime:
    try:
        return purge.naive_utc(datetime.fromisoformat(raw))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2030-01-31T12:00:00Z, got {raw!r}") \
            from None


def purge_now(ctx: StoreContext, db, args) -> None:
    print(json.dumps(purge.purge(ctx.settings, args.now), separators=(",", ":")), flush=True)


def register(groups, command) -> None:
    group = groups.add_parser("purge", help="delete what is past keeping")
    group.set_defaults(run=purge_now)
    group.add_argument("--now", type=moment, default=None,
                       help="purge as if it were this moment (ISO 8601, default: now)")
