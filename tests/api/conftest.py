"""The running system for the API suites, on the growth plan.

Each module sends a few hundred requests within a minute through one account: on the free plan
(200 a minute) the later ones would be refused with 429. Rate limits have their own tests.
"""

from __future__ import annotations

import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import make_system

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory):
    """The four real processes over a fresh database of each backend (per module)."""
    tmp_dir = tmp_path_factory.mktemp(f"api-{request.param}")
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    running = make_system(tmp_dir, url, DEFAULT_PLAN="growth").start()
    yield running
    running.stop()
    if request.param == "postgres":
        drop_postgres_database(url)
