"""Every call auth makes to the outside world (token endpoints, verification endpoints), through
the egress layer (`common.egress`): SSRF policy, fixed source addresses, timeouts, size caps.

Nothing here logs a URL's query, a body or a header value: they carry codes, secrets and tokens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from common.egress import Deadline, Egress, EgressConfig
from common.errors import ApiError
from common.validation import loads_finite

log = logging.getLogger("authport.auth.outbound")
MAX_ANSWER = 1 << 20  # a token or verification answer is small; anything larger is refused
CALL_TIMEOUT = 30.0
USER_AGENT = "authport-auth"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def data(self) -> dict | None:
        """The body as a mapping: JSON, or a form-encoded body (GitHub answers so without Accept)."""
        text = self.body.decode("utf-8", errors="replace").strip()
        try:
            value = loads_finite(text)
            return value if isinstance(value, dict) else None
        except ValueError:
            pass
        pairs = parse_qsl(text, keep_blank_values=True)
        return dict(pairs) if pairs and "=" in text else None


class Outbound:
    def __init__(self, egress: Egress):
        self.egress = egress

    @classmethod
    def from_settings(cls, settings) -> Outbound:
        return cls(Egress(EgressConfig.from_settings(settings)))

    def send(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
             body: bytes | None = None, timeout: float = CALL_TIMEOUT) -> Answer:
        """One call; raises ApiError (502/504/400) when it cannot be made or answered."""
        all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        response = self.egress.send(method, url, headers=all_headers, body=body, deadline=Deadline(timeout))
        data = response.read(MAX_ANSWER)
        return Answer(response.status, response.headers.get("Content-Type", ""), data)

    def post_form(self, url: str, fields: Mapping[str, str], *, headers: Mapping[str, str] | None = None,
                  as_json: bool = False) -> Answer:
        if as_json:
            body, kind = json.dumps(dict(fields)).encode(), "application/json"
        else:
            body, kind = urlencode(dict(fields)).encode(), "application/x-www-form-urlencoded"
        return self.send("POST", url, headers={"Content-Type": kind, **(headers or {})}, body=body)


def describe_failure(exc: ApiError) -> str:
    """A log-safe line about a failed call: the error code only, never the URL or a body."""
    return f"{exc.code} ({exc.status})"
