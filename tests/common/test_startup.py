"""Every process refuses to start without INTERNAL_API_KEY, with the one message naming it."""

from __future__ import annotations

import importlib

import pytest

from common.settings import load_settings
from common.startup import StartupError

FACTORIES = ["gateway.app", "services.store.app", "services.auth.app", "services.proxy.app", "services.dashboard.app"]


@pytest.mark.parametrize("module", FACTORIES)
def test_a_process_without_the_internal_key_does_not_start(module, tmp_path):
    settings = load_settings({"NANGO_DATABASE_URL": f"sqlite:///{tmp_path / 'authport.db'}"})
    assert settings.INTERNAL_API_KEY is None
    with pytest.raises(StartupError, match=r"^INTERNAL_API_KEY: must be set"):
        importlib.import_module(module).create_app(settings)
    assert not (tmp_path / "authport.db").exists()  # refused before anything was opened
