"""A small web server for browser tests: one page that loads Nango's frontend SDK (the ES modules
of `@nangohq/frontend` as npm ships them, served under /sdk/) and exposes it to the test.

The page defines `window.startAuth(host, token, key, options)`, which runs `nango.auth()` and
records its outcome in `window.outcome` ({ok: …} or {error: {type, message}}), and collects every
message posted to it (the popup's result page posts one) in `window.messages`.
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.system import free_port

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Authport test app</title></head><body>
<button id="connect">Connect</button>
<script type="module">
import Nango from '/sdk/index.js';
window.messages = [];
window.addEventListener('message', (event) => window.messages.push(event.data));
window.startAuth = (host, token, key, options) => {
  window.outcome = null;
  const nango = new Nango({ host, connectSessionToken: token });
  nango.auth(key, options || {}).then(
    (ok) => { window.outcome = { ok }; },
    (err) => { window.outcome = { error: { type: err.type, message: err.message } }; });
};
window.ready = true;
</script></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, sdk_dir: str, page: bytes, **kwargs):
        self.sdk_dir = sdk_dir
        self.page = page
        super().__init__(*args, directory=sdk_dir, **kwargs)

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.page)))
            self.end_headers()
            self.wfile.write(self.page)
            return
        if not self.path.startswith("/sdk/"):
            self.send_error(404)
            return
        self.path = self.path.removeprefix("/sdk")
        super().do_GET()

    def guess_type(self, path):
        return "text/javascript" if str(path).endswith(".js") else super().guess_type(path)

    def log_message(self, *args):
        pass


class SdkPage:
    """The page at `/` (default: PAGE) on `host` (any loopback address: another origin than the gateway's)."""

    def __init__(self, frontend_install: Path, host: str = "127.0.0.1", page: bytes = PAGE):
        self.sdk_dir = str(frontend_install / "node_modules" / "@nangohq" / "frontend" / "dist")
        self.host = host
        self.port = free_port(host)
        self.server = ThreadingHTTPServer((host, self.port), partial(_Handler, sdk_dir=self.sdk_dir, page=page))

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def start(self) -> SdkPage:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
