"""Authport's own OpenAPI 3.1 document, served at `GET /openapi.json` (no API key).

The document is written by hand in `gateway/openapi.yaml` (`docs/openapi.yaml` links to it, so the
installed package carries it). It is read and converted to JSON once, at start-up: a broken document
stops the gateway with a clear message instead of failing one request later.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from flask import Flask, Response

from common.startup import StartupError

DOCUMENT = Path(__file__).with_name("openapi.yaml")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: the document is large
PATH = "/openapi.json"


def load(path: Path = DOCUMENT) -> bytes:
    """The document as compact JSON bytes."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"{path.name}: the OpenAPI document cannot be read ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise StartupError(f"{path.name}: not an OpenAPI 3.1 document")
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def install(app: Flask) -> None:
    body = load()

    @app.get(PATH)
    def openapi_document():
        return Response(body, content_type="application/json", headers={"Cache-Control": "public, max-age=300"})
