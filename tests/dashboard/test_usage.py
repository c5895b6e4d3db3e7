"""The Usage page's figures, through the real processes on both backends: every request the gateway
admits or refuses with 429 is counted in its minute, reports of several gateways add up in the
store, and a bad report is refused whole."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from common.identity import Identity
from common.internal import ServiceClient
from tests.dashboard.test_access import PASSWORD, USER, browser

FLUSH_WAIT = 20.0  # the gateway sends its counts every 5 s


@pytest.fixture(scope="module")
def system_env():
    return {"NANGO_DASHBOARD_USERNAME": USER, "NANGO_DASHBOARD_PASSWORD": PASSWORD}


def store(system) -> ServiceClient:
    return ServiceClient(system.service_url("store"), system.env["INTERNAL_API_KEY"])


def dev_identity(system) -> Identity:
    status, body = store(system).call("GET", "/internal/dashboard/environments")
    assert status == 200
    return next(Identity.from_dict(row["identity"]) for row in body["data"] if row["name"] == "dev")


def figures(system) -> tuple[int, int]:
    """(admitted, refused with 429) in the last hour, as the Usage page shows them."""
    html = browser().get(system.url + "/dashboard/dev/usage").text
    admitted = int(re.search(r"Requests in the last hour</dt><dd>(\d+) admitted", html).group(1))
    refused = re.search(r"Refused with 429</dt><dd>(?:<span class=\"badge bad\">)?(\d+|none)", html).group(1)
    return admitted, 0 if refused == "none" else int(refused)


def test_admitted_requests_and_429s_are_counted(system):
    while time.time() % 60 > 50:  # all in one rate-limit window, so the plan's 200 is reached
        time.sleep(1)
    api, statuses = system.session(), []
    for _ in range(215):
        statuses.append(api.get(system.url + "/connections").status_code)
    admitted, refused = sum(s == 200 for s in statuses), statuses.count(429)
    assert refused > 0 and admitted + refused == 215
    deadline = time.monotonic() + FLUSH_WAIT
    while figures(system) != (admitted, refused) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert figures(system) == (admitted, refused)
    html = browser().get(system.url + "/dashboard/dev/usage").text
    assert html.count('class="limited"') >= 1 and "limit 200/min" in html


def test_reports_of_several_gateways_add_up(system):
    identity = dev_identity(system)
    minute = int(time.time() // 60) - 3
    row = {"account_id": identity.account_id, "environment_id": identity.environment_id, "minute": minute,
           "requests": 7, "limited": 2}
    for _ in range(2):  # two gateway replicas reporting the same minute
        assert store(system).call("POST", "/internal/usage", {"rows": [row]})[0] == 200
    status, body = store(system).call("GET", "/internal/dashboard/usage", identity=identity)
    assert status == 200 and body["limit"] == 200 and len(body["minutes"]) == 60
    [slot] = [m for m in body["minutes"] if m["minute"] == minute]
    assert (slot["requests"], slot["limited"], slot["environment_requests"]) == (14, 4, 14)
    clock = datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M")
    assert f"<td data-label=\"Minute\">{clock}</td><td data-label=\"Admitted\">14</td>" in \
        browser().get(system.url + "/dashboard/dev/usage").text


def test_a_bad_report_is_refused_whole(system):
    identity = dev_identity(system)
    minute = int(time.time() // 60) - 5
    good = {"account_id": identity.account_id, "environment_id": identity.environment_id, "minute": minute,
            "requests": 5, "limited": 0}
    for bad in ({**good, "requests": -1}, {**good, "limited": "3"}, {"account_id": identity.account_id}):
        status, body = store(system).call("POST", "/internal/usage", {"rows": [good, bad]})
        assert status == 400 and body["error"]["code"] == "invalid_body", body
    assert store(system).call("POST", "/internal/usage", {"rows": []})[0] == 400
    _, body = store(system).call("GET", "/internal/dashboard/usage", identity=identity)
    assert [m["requests"] for m in body["minutes"] if m["minute"] == minute] == [0]
