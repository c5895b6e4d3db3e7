"""The API suites run on the growth plan.

Each module sends a few hundred requests within a minute through one account: on the free plan
(200 a minute) the later ones would be refused with 429. Rate limits have their own tests.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return {"DEFAULT_PLAN": "growth"}
