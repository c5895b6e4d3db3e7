"""Prometheus metrics of every process (`GET /metrics`, internal callers only).

Under gunicorn each worker is a process, so the values live in prometheus_client's multiprocess
files: `common.metrics_dir.prepare(process)` (the serve entry point, before anything imports this
module) gives the server a fresh directory, gunicorn's child_exit hook marks a dead worker's files,
and a scrape sums every worker. An app built without it (in a test) keeps them in memory.

Labels are bounded: a route is the Flask rule (`/connections/<path:connection_id>`) or, in the
gateway, the owning prefix (`/connections/*`), never a raw path; an egress address is one of the
configured few.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from common.metrics_dir import ENV

ROUTE_KEY = "authport.route"  # the request's route template, set by whoever knows it (Flask, gateway)

REQUESTS = Counter("authport_http_requests_total", "Requests answered, by route template, method and status.",
                   ["process", "route", "method", "status"])
LATENCY = Histogram("authport_http_request_duration_seconds", "Time to answer, to the last byte sent.",
                    ["process", "route", "method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RATE_LIMIT = Counter("authport_rate_limit_decisions_total",
                     "Gateway admissions by plan: admitted, limited (429), or unlimited (Redis down, fail-open).",
                     ["plan", "outcome"])
REFRESHES = Counter("authport_refreshes_total", "Token refreshes by outcome (success, failure).", ["outcome"])
PROXIED = Counter("authport_proxied_calls_total",
                  "Proxied calls by outcome, the upstream's status class (2xx … 5xx, none) and egress address.",
                  ["outcome", "status_class", "egress"])
WEBHOOKS = Counter("authport_webhook_deliveries_total",
                   "Auth webhook delivery attempts by outcome (delivered, retrying, failed).", ["outcome"])
RECORDS = Counter("authport_operation_records_total",
                  "Operation records by what became of them: queued, written (taken by the store), or dropped "
                  "(a full queue, a refused batch, the store away past the retries).", ["process", "outcome"])


_decisions: dict[tuple[str, str], object] = {}


def rate_limit_decision(plan: str, decision, fail_open: bool) -> None:
    """Count one admission: admitted, limited (429), unlimited (no Redis, fail-open) or unavailable."""
    if decision is None:
        outcome = "unlimited" if fail_open else "unavailable"
    else:
        outcome = "admitted" if decision.allowed else "limited"
    child = _decisions.get((plan, outcome))
    if child is None:
        child = _decisions[(plan, outcome)] = RATE_LIMIT.labels(plan, outcome)
    child.inc()


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"


class RequestMetrics:
    """WSGI middleware: one count and one latency per request, at the end of its answer's body."""

    def __init__(self, app, process: str, route_of: Callable[[dict], str] | None = None):
        self.app, self.process, self.route_of = app, process, route_of

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen: list[str] = []

        def recording_start(status, headers, exc_info=None):
            seen[:] = [status.split(" ", 1)[0]]
            return start_response(status, headers, exc_info)

        body = self.app(environ, recording_start)
        return _Finished(body, lambda: self._observe(environ, seen[0] if seen else "500", started))

    def _observe(self, environ, status: str, started: float) -> None:
        route = environ.get(ROUTE_KEY) or (self.route_of(environ) if self.route_of else None) or "other"
        method = environ.get("REQUEST_METHOD", "GET")
        REQUESTS.labels(self.process, route, method, status).inc()
        LATENCY.labels(self.process, route, method).observe(time.perf_counter() - started)


class _Finished:
    """The answer's body, calling `done` once when the server closes it (after the last byte)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]):
        self.body, self.done = body, done

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done()


def scrape(extra: Callable[[], Iterable[GaugeMetricFamily]] | None = None) -> tuple[bytes, str]:
    """The text exposition of every worker of this process, plus `extra` (read at scrape time)."""
    registry = CollectorRegistry()
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry.register(_Collected(REGISTRY.collect))
    if extra is not None:
        registry.register(_Collected(extra))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collected:
    def __init__(self, collect: Callable[[], Iterable]):
        self._collect = collect

    def collect(self):
        yield from self._collect()


def gauge(name: str, documentation: str, values: dict[tuple[str, ...], float], labels: list[str]):
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


def install(app, process: str, internal_key: str | None, extra=None) -> None:
    """`GET /metrics` for holders of the internal key, in INTERNAL_KEY_HEADER or as `Authorization:
    Bearer` (what a Prometheus scrape config sends; anyone else: 404, as if it did not exist), the
    route template of each request for RequestMetrics, and RequestMetrics itself around the app."""
    from flask import Response, request

    from common.httpapp import carries_internal_key

    @app.before_request
    def _route_template():
        if request.url_rule is not None and ROUTE_KEY not in request.environ:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    def metrics_view():
        if not carries_internal_key(internal_key):
            from common.errors import NotFound

            raise NotFound("Route not found")
        body, content_type = scrape(extra)
        return Response(body, content_type=content_type)

    app.add_url_rule("/metrics", "authport_metrics", metrics_view, methods=["GET"])
    app.wsgi_app = RequestMetrics(app.wsgi_app, process)
