"""Requests per minute and the 429s among them, per account and environment, for the dashboard.

Each gateway process counts what it admitted and refused (`gateway/usage.py`) and sends its counts
every few seconds to `POST /internal/usage`; the counts of every gateway replica and worker add up
here (one upsert per minute and environment). A gateway killed between two sends loses its last
few seconds of counts, which a usage chart can bear; the rate limit itself never depends on them.
Rows older than RETENTION are dropped as new ones arrive.
"""

from __future__ import annotations

import time
from typing import Annotated

from peewee import EXCLUDED
from pydantic import Field

from common.validation import Strict
from services.store.db import database
from services.store.migrations import write_transaction
from services.store.models import UsageMinute

RETENTION_MINUTES = 24 * 60
HOUR = 60
MAX_ROWS = 5000  # rows in one report: a gateway sends a few per interval


Count = Annotated[int, Field(ge=0, le=10**9)]
Id = Annotated[int, Field(ge=1, le=2**62)]


class UsageRow(Strict):
    account_id: Id
    environment_id: Id
    minute: Annotated[int, Field(ge=0, le=2**40)]
    requests: Count
    limited: Count


class UsageReport(Strict):
    rows: list[UsageRow] = Field(min_length=1, max_length=MAX_ROWS)


def now_minute() -> int:
    return int(time.time() // 60)


def record(report: UsageReport) -> int:
    """Add a gateway's reported counts to what other gateways reported; how many rows."""
    rows = [row.model_dump() for row in report.rows]
    with write_transaction(database):
        (UsageMinute.insert_many(rows)
         .on_conflict(conflict_target=[UsageMinute.account_id, UsageMinute.environment_id, UsageMinute.minute],
                      update={UsageMinute.requests: UsageMinute.requests + EXCLUDED.requests,
                              UsageMinute.limited: UsageMinute.limited + EXCLUDED.limited})
         .execute())
        UsageMinute.delete().where(UsageMinute.minute < now_minute() - RETENTION_MINUTES).execute()
    return len(rows)


def last_hour(account_id: int, environment_id: int, end_minute: int | None = None) -> list[dict]:
    """The 60 minutes ending with `end_minute` (default: this one), oldest first, each with the
    account's requests and 429s (the plan's limit is per account) and this environment's share."""
    end = now_minute() if end_minute is None else end_minute
    start = end - HOUR + 1
    minutes = {m: {"minute": m, "requests": 0, "limited": 0, "environment_requests": 0,
                   "environment_limited": 0} for m in range(start, end + 1)}
    rows = UsageMinute.select().where((UsageMinute.account_id == account_id) & (UsageMinute.minute >= start)
                                      & (UsageMinute.minute <= end))
    for row in rows:
        slot = minutes[row.minute]
        slot["requests"] += row.requests
        slot["limited"] += row.limited
        if row.environment_id == environment_id:
            slot["environment_requests"] += row.requests
            slot["environment_limited"] += row.limited
    return list(minutes.values())
