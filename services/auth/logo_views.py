"""`GET /images/template-logos/<provider>.svg`: the logo URL the API hands out for every provider.

Open (an `<img>` carries no key), cacheable for a week and revalidated by ETag."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, request

from common.errors import NotFound
from services.auth import logos
from services.auth.context import ctx

bp = Blueprint("logos", __name__)
CACHE_CONTROL = "public, max-age=604800, stale-while-revalidate=86400"
# An SVG opened on its own is a document: it may show itself and run nothing.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@functools.lru_cache(maxsize=4096)
def _logo(name: str, display_name: str | None) -> logos.Logo:
    return logos.logo(name, display_name)


@bp.route("/images/template-logos/<name>.svg", methods=["GET", "HEAD"])
def template_logo(name: str):
    entry = ctx().catalogue.get(name)
    if entry is None:
        raise NotFound(f"No provider named '{name}' in the catalogue")
    logo = _logo(name, entry.get("display_name"))
    headers = {"ETag": logo.etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": SVG_CSP, "Vary": "Accept-Encoding"}
    if _matches(request.headers.get("If-None-Match", ""), logo.etag):
        return Response(status=304, headers=headers)
    return Response(logo.svg, headers={**headers, "Content-Type": "image/svg+xml"})


def _matches(header: str, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, RFC 9110) or is `*`."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
