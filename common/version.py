"""Authport's version: the checkout's pyproject.toml when run from one (an editable install's
metadata would lag behind a version bump until reinstalled), else the installed package's."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def version() -> str:
    if PYPROJECT.is_file():
        found = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.M)
        if found:
            return found.group(1)
    try:
        return metadata.version("authport")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = version()
