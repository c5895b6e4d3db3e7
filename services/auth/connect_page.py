"""The page end users connect their accounts on, at `/connect/`.

Opened two ways: by `connect_link` (`/connect/?session_token=…`, in a tab of its own), or framed by
`@nangohq/frontend`'s `openConnectUI` (`/connect/?apiURL=…&lang=…&theme=…`), which hands it the
session token by postMessage. The page is a server-rendered shell; its script (static/connect.js)
talks only to Authport's public API with the session token. It may be framed only by the server's
own origin and CONNECT_UI_ALLOWED_ORIGINS (CSP frame-ancestors), and posts only to those.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template, request

from common.errors import NotFound
from services.auth import connect_i18n
from services.auth.context import ctx

bp = Blueprint("connect_page", __name__, template_folder="page_templates")
STATIC = Path(__file__).with_name("static")
ASSETS = ("connect.js", "connect.css")
THEMES = ("light", "dark", "system")
# What settings_changed reports: the page's own colours (Authport has no per-environment palette).
PALETTE = {"light": {"primary": "#1d4ed8"}, "dark": {"primary": "#8ab4ff"}}
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@functools.cache
def assets() -> dict[str, tuple[str, bytes]]:
    """Each static file under its content-hashed URL: name -> (URL, bytes)."""
    found = {}
    for name in ASSETS:
        data = (STATIC / name).read_bytes()
        stem, _, ext = name.rpartition(".")
        found[name] = (f"/connect/assets/{stem}.{hashlib.sha256(data).hexdigest()[:12]}.{ext}", data)
    return found


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def ws_origin(http_origin: str) -> str:
    return "ws" + http_origin.removeprefix("http")


def content_security_policy(server: str, frame_origins: list[str]) -> str:
    """Scripts and styles from this server only; framed only by the allowed origins."""
    return "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self'", f"img-src 'self' {server} data:",
        f"connect-src 'self' {server} {ws_origin(server)}", "base-uri 'none'", "form-action 'none'",
        "frame-ancestors " + " ".join(["'self'"] + frame_origins),
    ))


def page_config(lang: str, theme: str, frame_origins: list[str], server: str) -> dict:
    settings = ctx().settings
    return {"lang": lang, "strings": connect_i18n.strings(lang), "theme": theme, "palette": PALETTE,
            "wsPath": settings.NANGO_SERVER_WEBSOCKETS_PATH, "frameOrigins": frame_origins, "apiOrigins": [server]}


@bp.get("/connect")
@bp.get("/connect/")
def page():
    settings = ctx().settings
    server = origin(settings.server_url)
    frame_origins = list(dict.fromkeys([server, *settings.CONNECT_UI_ALLOWED_ORIGINS]))
    lang = connect_i18n.language(request.args.get("lang"), request.headers.get("Accept-Language"))
    theme = request.args.get("theme") if request.args.get("theme") in THEMES else "system"
    body = render_template("connect/page.html", lang=lang, theme=theme, s=connect_i18n.strings(lang),
                           assets={name: url for name, (url, _) in assets().items()},
                           embedded=request.headers.get("Sec-Fetch-Dest") == "iframe",
                           config=page_config(lang, theme, frame_origins, server))
    return Response(body, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff", "Content-Language": lang,
        "Content-Security-Policy": content_security_policy(server, frame_origins)})


@bp.get("/connect/assets/<name>")
def asset(name: str):
    for url, data in assets().values():
        if url.rsplit("/", 1)[1] == name:
            return Response(data, headers={"Content-Type": ASSET_TYPES[Path(name).suffix],
                                           "Cache-Control": "public, max-age=31536000, immutable",
                                           "X-Content-Type-Options": "nosniff"})
    raise NotFound("Route not found")
