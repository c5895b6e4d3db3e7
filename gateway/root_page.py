"""What a browser sees at the server's root: what this server is and where its documentation is.

The root is also the frontend SDK's websocket by default (`NANGO_SERVER_WEBSOCKETS_PATH=/`); werkzeug
sends a request there to the websocket only when it asks for an upgrade (`Connection: upgrade`,
`Upgrade: websocket`), and every other request here; it points operators to the dashboard at /dashboard.
"""

from __future__ import annotations

from html import escape

from flask import Flask, Response

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Authport</title><style>
:root {{ color-scheme: light dark; }}
body {{ font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 40rem; margin: 3rem auto;
       padding: 0 1.25rem; }}
code {{ font-size: .95em; }} a {{ color: LinkText; }}
</style></head><body><main>
<h1>Authport</h1>
<p>This is an <strong>Authport</strong> server: a self-hosted credential broker that speaks
<a href="{nango_docs}">Nango's public HTTP API</a>. It runs OAuth and API-key connections for an
application's users, keeps their credentials encrypted and proxies API calls with them.</p>
<h2>Where to go</h2>
<ul>
<li>API base URL: <code>{server_url}</code>; calls need the environment's secret key
(<code>Authorization: Bearer &lt;key&gt;</code>), shown once by <code>make up</code> or the admin CLI.</li>
<li>Documentation: the <code>README.md</code> of your Authport installation, and Nango's
<a href="{nango_docs}">API reference</a> for each endpoint.</li>
<li>End users connect their accounts through the links your application creates
(<code>connect_link</code>), not from here.</li>
<li>Operators: the dashboard at <a href="/dashboard"><code>/dashboard</code></a> (HTTP Basic with
<code>NANGO_DASHBOARD_USERNAME</code>/<code>NANGO_DASHBOARD_PASSWORD</code>; without them, this machine only).</li>
<li>Health: <a href="/health"><code>/health</code></a>.</li>
</ul></main></body></html>
"""
NANGO_DOCS = "https://docs.nango.dev/reference/api"
HEADERS = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def install(app: Flask, server_url: str) -> None:
    body = PAGE.format(server_url=escape(server_url), nango_docs=NANGO_DOCS)

    @app.route("/", methods=["GET", "HEAD"])
    def root():
        return Response(body, headers=HEADERS)
