"""The end of a popup flow: the page shown in the popup and the message for the SDK's websocket.

The page posts the result to its opener and on the `nango-oauth-callback` BroadcastChannel, as
Nango's frontend SDK and Connect UI expect; it closes itself on `nango_oauth_callback_ack`, and
500 ms after a success. A service that finished (or failed) a flow answers the gateway with the
page and the header `WS_MESSAGE_HEADER`; the gateway removes the header and delivers the message
to the websocket `ws_client_id` (on whichever gateway process holds it).
"""

from __future__ import annotations

import html
import json
import secrets

WS_MESSAGE_HEADER = "X-Authport-Ws-Message"
MAX_DESCRIPTION = 500

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><p>{text}</p>
<script nonce="{nonce}">
(function () {{
  var message = {message};
  var success = message.type === 'nango_oauth_callback_success';
  try {{ if (window.opener) {{ window.opener.postMessage(message, '*'); }} }} catch (e) {{}}
  try {{ var channel = new BroadcastChannel('nango-oauth-callback'); channel.postMessage(message); }} catch (e) {{}}
  window.addEventListener('message', function (event) {{
    if (event.data && event.data.type === 'nango_oauth_callback_ack') {{ window.close(); }}
  }});
  if (success) {{ setTimeout(function () {{ window.close(); }}, 500); }}
}})();
</script></body></html>
"""


def _script_json(value) -> str:
    """JSON safe to place inside a <script> element."""
    return (json.dumps(value, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def page(success: bool, error_type: str | None = None, description: str | None = None) -> tuple[str, dict]:
    """(HTML, headers) of the popup's result page."""
    nonce = secrets.token_urlsafe(16)
    if success:
        message = {"type": "nango_oauth_callback_success"}
        title, text = "Connected", "The connection was made. You can close this window."
    else:
        message = {"type": "nango_oauth_callback_error",
                   "payload": {"message": (description or "")[:MAX_DESCRIPTION], "errorType": error_type}}
        title, text = "Connection failed", f"The connection failed: {(description or error_type or '')[:500]}"
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), nonce=nonce, message=_script_json(message))
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return body, headers


def success_message(provider_config_key: str, connection_id: str, is_pending: bool = False) -> dict:
    return {"message_type": "success", "provider_config_key": provider_config_key, "connection_id": connection_id,
            "is_pending": is_pending}


def error_message(provider_config_key: str | None, connection_id: str | None, error_type: str,
                  description: str) -> dict:
    return {"message_type": "error", "provider_config_key": provider_config_key, "connection_id": connection_id,
            "error_type": error_type, "error_desc": description[:MAX_DESCRIPTION]}


def ws_header(ws_client_id: str | None, message: dict) -> dict[str, str]:
    """The header asking the gateway to deliver `message` to websocket `ws_client_id` (none without one)."""
    if not ws_client_id:
        return {}
    return {WS_MESSAGE_HEADER: json.dumps({"ws_client_id": ws_client_id, "message": message}, ensure_ascii=True,
                                          separators=(",", ":"))}
