"""Token expiry moments: parsed from what callers and providers send, kept inside a safe range.

Python's datetime stops at years 1 and 9999. A moment at the edge with an offset
(`9999-12-31T23:59:59-14:00`), or `now + expires_in` for a huge `expires_in`, overflows when it
is normalised to UTC or when the refresh buffer is subtracted from it. Every stored expiry is
therefore kept between EARLIEST and LATEST: an API caller sending one outside is refused
(`OutOfRange`, a ValueError), a provider's answer outside is clamped (it cannot be refused: the
token is already issued).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

# The epoch: no token expired before it, and it keeps `expiry - buffer` far from year 1.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The last millisecond Python can hold: a caller's "never expires" of 9999-12-31T23:59:59Z fits.
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
RANGE_TEXT = "between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
MILLISECONDS_FROM = 1e11  # epoch numbers above this are milliseconds (1e11 s is the year 5138)


class OutOfRange(ValueError):
    """A well-formed moment outside EARLIEST..LATEST; `nearest` is the bound on its side."""

    def __init__(self, given: object, nearest: datetime):
        super().__init__(f"{given!r} is not {RANGE_TEXT}")
        self.nearest = nearest


def _from_epoch(number: float) -> datetime:
    if math.isnan(number):
        raise ValueError("not a number")
    seconds = number / 1000 if abs(number) > MILLISECONDS_FROM else number
    if not EARLIEST.timestamp() <= seconds <= LATEST.timestamp():
        raise OutOfRange(number, LATEST if seconds > 0 else EARLIEST)
    return datetime.fromtimestamp(seconds, UTC)


def _from_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ValueError when malformed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    nearest = EARLIEST if moment.year < 5000 else LATEST
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        raise OutOfRange(text, nearest) from None
    if not EARLIEST <= moment <= LATEST:
        raise OutOfRange(text, nearest)
    return moment


def parse_moment(value: str | int | float) -> datetime:
    """An ISO-8601 string or epoch seconds/milliseconds (number or digits) as an aware UTC datetime.

    Raises ValueError when malformed, OutOfRange (a ValueError) when outside EARLIEST..LATEST.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a moment")
    if isinstance(value, (int, float)):
        try:
            return _from_epoch(float(value))
        except OverflowError:  # an int too large for a float
            raise OutOfRange(value, LATEST if value > 0 else EARLIEST) from None
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return _from_epoch(float(text))
    return _from_iso(text)


def clamp(moment: datetime) -> datetime:
    """`moment` (aware) moved into EARLIEST..LATEST."""
    return min(max(moment, EARLIEST), LATEST)


def after(now: datetime, seconds: float) -> datetime | None:
    """`now + seconds`, clamped; None for NaN (no usable lifetime)."""
    if math.isnan(seconds):
        return None
    room_ahead, room_behind = (LATEST - now).total_seconds(), (now - EARLIEST).total_seconds()
    if seconds >= room_ahead:
        return LATEST
    if seconds <= -room_behind:
        return EARLIEST
    return now + timedelta(seconds=seconds)


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
