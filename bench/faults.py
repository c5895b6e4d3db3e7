"""The fault suite as a benchmark: `.venv/bin/python -m bench.faults` starts two gateways, two
stores, two proxies and auth on Postgres and a private Redis, applies each fault under load and
prints the table (tests/faults/harness.py says what each column counts)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.faults import harness


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="authport-faults-") as tmp:
        world = harness.build_world(Path(tmp))
        try:
            rows = harness.run(world)
        finally:
            harness.close_world(world)
    print(harness.table(rows))


if __name__ == "__main__":
    main()
