"""A connection's credentials: parsed from what a caller gives, sealed into and opened from the
row's encrypted column. The only module that touches `Connection.credentials_enc`."""

from __future__ import annotations

import json
from datetime import datetime

from common import timestamps
from common.errors import ApiError, field_error
from services.store import formatters
from services.store.context import StoreContext
from services.store.models import Connection


def parse_expiry(value) -> datetime | None:
    """An expiry given as ISO-8601, epoch seconds or epoch milliseconds, as naive UTC.

    Out of timestamps' range (datetime overflows near years 1 and 9999) is a 400 like any
    malformed date, refused before anything is written.
    """
    if value is None or value == "":
        return None
    try:
        moment = timestamps.parse_moment(value)
    except timestamps.OutOfRange:
        raise ApiError(code="invalid_body", status=400, message=None, errors=[
            field_error(["credentials", "expires_at"], f"Invalid date: must be {timestamps.RANGE_TEXT}")]) from None
    except (ValueError, OverflowError, OSError):
        raise ApiError(code="invalid_body", status=400, message=None, errors=[
            field_error(["credentials", "expires_at"], "Invalid date")]) from None
    return moment.replace(tzinfo=None)


def build(given) -> tuple[dict, datetime | None]:
    """Stored credentials (Nango's shape, `raw` included) and their expiry."""
    data = given.model_dump(exclude_none=True)
    raw = data.pop("raw", None)
    expires_at = parse_expiry(data.get("expires_at"))
    if expires_at is not None:
        data["expires_at"] = formatters.iso(expires_at)
    if given.type in ("OAUTH2", "OAUTH2_CC", "OAUTH1"):
        data["raw"] = raw if raw is not None else dict(data)
    elif raw is not None:  # a token mode's exchange answer (TWO_STEP, BILL)
        data["raw"] = raw
    return data, expires_at


def seal(ctx: StoreContext, conn: Connection, credentials: dict) -> None:
    """Encrypt `credentials` into the row (bound to its table, column and id by `Base.seal`)."""
    conn.seal(ctx.cipher, "credentials_enc", json.dumps(credentials))


def of(ctx: StoreContext, conn: Connection) -> dict:
    """The row's credentials, decrypted."""
    return conn.unseal_json(ctx.cipher, "credentials_enc")
