"""Authport's version: the installed package's, else the checkout's pyproject.toml."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path


def version() -> str:
    try:
        return metadata.version("authport")
    except metadata.PackageNotFoundError:
        found = re.search(r'^version = "([^"]+)"', (Path(__file__).resolve().parents[1] / "pyproject.toml")
                          .read_text(), re.M)
        return found.group(1) if found else "unknown"


VERSION = version()
