"""Fixtures shared by every test: throwaway databases on both backends and the running system."""

from __future__ import annotations

import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import make_system

BACKENDS = ("sqlite", "postgres")


def _database(kind: str, tmp_dir) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_dir / 'authport.db'}"
    return create_postgres_database()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh, empty database of each backend."""
    url = _database(request.param, tmp_path)
    yield url
    if request.param == "postgres":
        drop_postgres_database(url)


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    """Extra environment variables of the `system` fixture; a module or folder may override it."""
    return {}


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory, system_env):
    """The four real processes on loopback ports, over a fresh database of each backend (per module)."""
    tmp_dir = tmp_path_factory.mktemp(f"system-{request.param}")
    url = _database(request.param, tmp_dir)
    running = make_system(tmp_dir, url, **system_env).start()
    yield running
    running.stop()
    if request.param == "postgres":
        drop_postgres_database(url)
