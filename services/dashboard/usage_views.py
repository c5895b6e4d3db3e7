"""Usage: the account's requests per minute against its plan's limit, and the 429s, over the last
hour — a chart drawn here as SVG (no script), and the same figures as a table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint

from services.dashboard.context import act, environment
from services.dashboard.pages import render

bp = Blueprint("usage", __name__, url_prefix="/dashboard")

WIDTH, HEIGHT = 720, 240  # the chart's drawing area, in SVG units
LEFT, BOTTOM, TOP = 56, 28, 12  # room for the axes' labels
SLOT = (WIDTH - LEFT) / 60


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    admitted_y: float
    admitted_height: float
    limited_y: float
    limited_height: float
    label: str


def clock(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M")


def chart(minutes: list[dict], limit: int) -> dict:
    """Bars (admitted, with the 429s stacked on top), the limit's line and the axis ticks."""
    peak = max([m["requests"] + m["limited"] for m in minutes] + [limit, 1])
    top = peak * 1.1
    plot = HEIGHT - BOTTOM - TOP

    def y(value: float) -> float:
        return round(TOP + plot - value / top * plot, 1)

    bars = []
    for i, m in enumerate(minutes):
        admitted_y, limited_y = y(m["requests"]), y(m["requests"] + m["limited"])
        bars.append(Bar(x=round(LEFT + i * SLOT + 1, 1), width=round(SLOT - 2, 1), admitted_y=admitted_y,
                        admitted_height=round(y(0) - admitted_y, 1), limited_y=limited_y,
                        limited_height=round(admitted_y - limited_y, 1),
                        label=f"{clock(m['minute'])}: {m['requests']} admitted, {m['limited']} refused (429)"))
    ticks = sorted({0, limit, round(peak)})
    return {"bars": bars, "limit_y": y(limit), "ticks": [(t, y(t)) for t in ticks], "width": WIDTH,
            "height": HEIGHT, "left": LEFT, "base_y": y(0),
            "times": [(round(LEFT + i * SLOT, 1), anchor, clock(minutes[i]["minute"]))
                      for i, anchor in ((0, "start"), (15, "middle"), (30, "middle"), (45, "middle"), (59, "end"))]}


@bp.get("/<env>/usage")
def usage(env: str):
    environment(env)
    answer = act("GET", "/internal/dashboard/usage")
    if not answer.ok:
        return render("usage.html", "usage", 502, minutes=[], error=answer.message)
    body = answer.body
    minutes, limit = body["minutes"], body["limit"]
    totals = {
        "requests": sum(m["requests"] for m in minutes),
        "limited": sum(m["limited"] for m in minutes),
        "peak": max(m["requests"] + m["limited"] for m in minutes),
        "environment": sum(m["environment_requests"] for m in minutes),
    }
    busy = [dict(m, time=clock(m["minute"])) for m in reversed(minutes) if m["requests"] or m["limited"]]
    return render("usage.html", "usage", plan=body["plan"], limit=limit, totals=totals, chart=chart(minutes, limit),
                  busy=busy, minutes=minutes)
