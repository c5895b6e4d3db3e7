"""The gateway's catch-all route: every public path not answered by the fast path or a fixed route.

Shaped like `gateway.fastpath.ProxyFastPath` (its collaborators given once, one call per request)
so that the two can be read side by side; `destination` decides where a request goes without
touching the network, and is tested alone.
"""

from __future__ import annotations

from flask import request

from common import metrics
from common.errors import ApiError, NotFound
from common.internal import ServiceClient
from gateway import authn, forwarding, routing, websockets
from gateway.admission import Admission, too_many

SERVICE_BODY_LIMIT = 1024 * 1024  # what every service but the proxy accepts (common.httpapp)
# Sent with a provider webhook from an address past its failure limit: the store still checks it
# (a right signature is relayed) but records no refusal, so a flood of forged ones costs no rows.
UNRECORDED_REFUSALS = "X-Authport-Unrecorded-Refusals"
REFUSED_WEBHOOK = (401, 404)  # a wrong signature, an unknown environment or integration
UNSUPPORTED = "unsupported"


def destination(path: str, method: str) -> tuple[str | None, str | None]:
    """(service, unsupported area) of a request: (None, None) when no route has the path."""
    # "." and ".." segments are refused: the HTTP client removes them when forwarding, so
    # "/connections/../internal/..." would reach a service's internal routes with our secret.
    if any(segment in (".", "..") for segment in path.split("/")):
        return None, None
    area = routing.unsupported(path, method)
    if area is not None:
        return UNSUPPORTED, area
    return routing.owner(path), None


class Router:
    """The Flask view behind `/<path>`: admits the caller and forwards to the owning service."""

    def __init__(self, admission: Admission, clients: dict[str, ServiceClient], hub: websockets.Hub):
        self.admission = admission
        self.clients = clients
        self.hub = hub

    def __call__(self, _path: str):
        request.environ[metrics.ROUTE_KEY] = routing.template(request.path)
        service, area = destination(request.path, request.method)
        if service == UNSUPPORTED:
            return self._unsupported(area)
        if service is None:
            raise NotFound("Route not found")
        if service == "dashboard":
            return self._dashboard()
        if request.method == "OPTIONS":
            return "", 204
        if service == "store" and request.method == "POST" and request.path.startswith(authn.PROVIDER_WEBHOOKS):
            return self._provider_webhook()
        if service != "proxy":
            # Refuse an oversized body here, before it is sent on: a service that answers 413 without
            # reading the body closes the connection, and the next request sent on it would fail.
            request.max_content_length = SERVICE_BODY_LIMIT
        return self._forward(service)

    def _admit(self):
        return self.admission.admit_request(request.method, request.path, request.headers, request.args,
                                            request.remote_addr or "unknown")

    def _unsupported(self, area: str):
        if request.method == "OPTIONS":
            return "", 204
        self._admit()  # who may ask is asked first
        raise ApiError(f"{area} are a Nango feature Authport does not implement.",
                       code="not_supported_by_authport", status=501)

    def _dashboard(self):
        """The dashboard's pages, passed through without an API key (it admits its own users)."""
        request.max_content_length = SERVICE_BODY_LIMIT
        response = forwarding.forward(self.clients["dashboard"], None, headers=forwarding.dashboard_headers(
            request.headers, request.remote_addr or "unknown"))
        if request.method == "POST" and response.status_code < 400:
            self.admission.cache.clear()  # the operator may just have rotated or revoked a key of our callers
        return response

    def _provider_webhook(self):
        """A provider's webhook (no key: the store checks its signature). Refusals count against
        the sender's address like failed authentications: past AUTH_FAILURE_LIMIT a refusal is a
        429 and the store stops recording refusals from it; a rightly signed webhook still passes."""
        request.max_content_length = SERVICE_BODY_LIMIT
        address = request.remote_addr or "unknown"
        headers = forwarding.outbound_headers(request.headers)
        if self.admission.limiter.auth_blocked(address) is not None:
            headers[UNRECORDED_REFUSALS] = "1"
        response = forwarding.forward(self.clients["store"], None, headers=headers)
        if response.status_code in REFUSED_WEBHOOK:
            refusal = self.admission.limiter.auth_failed(address)
            if refusal is not None:
                raise too_many(refusal, "Too many refused webhooks from this address")
        return response

    def _forward(self, service: str):
        try:
            identity, decision = self._admit()
        except ApiError as error:
            if error.status == 401 and request.path.startswith("/oauth/connect/"):
                return websockets.refuse_popup(self.hub, error, request.path, request.args)
            raise
        # Streamed both ways: proxied calls, and the log export (a SIEM's time range, any size).
        response = forwarding.forward(self.clients[service], identity,
                                      stream=service == "proxy" or request.path == "/logs/export")
        self.hub.relay(response)
        if decision is not None:
            response.headers.update(decision.headers())
        if service == "store" and request.path.startswith("/environment/") and response.status_code < 400:
            self.admission.cache.clear()  # a key of this gateway's callers may just have changed
        return response
