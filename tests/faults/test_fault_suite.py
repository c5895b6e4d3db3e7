"""The fault suite (issue 9): two gateways, two stores, two proxies and auth on Postgres and Redis,
under steady load; each process kind is killed with SIGKILL in turn and started again, Redis is
stopped and started, auth is stopped and started. Per fault: no 5xx other than the documented 503s,
no acknowledged write lost, no auth webhook lost, and recovery within seconds of the repair.

The table is printed (run with -s to see it) and written to tests/artifacts/faults.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RECOVERY_LIMIT = 10.0  # seconds from the repair to the last failed request


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    world = harness.build_world(tmp_path_factory.mktemp("faults"))
    try:
        found = harness.run(world)
    except BaseException:
        print(world.logs())
        raise
    finally:
        harness.close_world(world)
    report = harness.table(found)
    print("\n" + report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.txt").write_text(report + "\n")
    return found


@pytest.mark.parametrize("fault", [f.name for f in harness.FAULTS])
def test_fault(rows, fault):
    [row] = [r for r in rows if r.fault == fault]
    assert row.sent > 20, harness.table([row])  # the load kept running through the fault
    assert row.undocumented_5xx == 0 and row.refused_4xx == 0, harness.table([row])
    assert row.lost_writes == 0 and row.acked_writes > 0, harness.table([row])
    assert row.lost_webhooks == 0, harness.table([row])
    assert row.recovery_seconds <= RECOVERY_LIMIT, harness.table([row])


def test_every_flow_during_the_run_sent_its_webhook(rows):
    assert sum(r.flows for r in rows) > 0 and sum(r.lost_webhooks for r in rows) == 0, harness.table(rows)
