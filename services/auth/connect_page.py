"""The page `connect_link` opens: the end user sees the session's integrations and connects each
one (the OAuth popup, or a form for an API key or basic credentials) without any frontend code of
the customer's. It talks only to Authport's public API, with the session token from its URL."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response

bp = Blueprint("connect_page", __name__)

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Connect your accounts</title>
<style nonce="{nonce}">
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
li {{ list-style: none; border: 1px solid #ddd; border-radius: 8px; padding: 1rem; margin: .75rem 0; }}
input {{ display: block; margin: .3rem 0; padding: .4rem; width: 95%; }}
.status {{ margin-left: .5rem; font-weight: 600; }}
.error {{ color: #b00020; }}
</style></head>
<body><h1>Connect your accounts</h1><p id="intro">Loading…</p><ul id="integrations"></ul>
<script nonce="{nonce}">
(function () {{
  var token = new URLSearchParams(location.search).get('session_token') || '';
  var api = location.origin, wsPath = {ws_path};
  function call(path, options) {{
    options = options || {{}};
    options.headers = Object.assign({{'Authorization': 'Bearer ' + token}}, options.headers || {{}});
    return fetch(api + path, options).then(function (r) {{
      return r.json().then(function (body) {{ if (!r.ok) {{ throw body.error || {{}}; }} return body; }});
    }});
  }}
  function el(tag, text, cls) {{
    var node = document.createElement(tag); if (text) {{ node.textContent = text; }}
    if (cls) {{ node.className = cls; }} return node;
  }}
  function query() {{ return '?connect_session_token=' + encodeURIComponent(token); }}
  function done(status, ok, message) {{
    status.textContent = message; status.className = 'status ' + (ok ? '' : 'error');
  }}
  function popup(key, status) {{
    var win = window.open('', '_blank', 'width=500,height=600');
    var socket = new WebSocket(api.replace(/^http/, 'ws') + wsPath);
    socket.onmessage = function (event) {{
      var data = JSON.parse(event.data);
      if (data.message_type === 'connection_ack') {{
        win.location = api + '/oauth/connect/' + encodeURIComponent(key) + query() +
          '&ws_client_id=' + data.ws_client_id;
      }} else if (data.message_type === 'success') {{ done(status, true, 'Connected'); socket.close(); }}
      else if (data.message_type === 'error') {{ done(status, false, 'Failed: ' + data.error_desc); socket.close(); }}
    }};
  }}
  function form(key, fields, route, status) {{
    var f = el('form'), inputs = {{}};
    fields.forEach(function (name) {{
      var input = el('input'); input.name = name; input.placeholder = name;
      if (name !== 'username') {{ input.type = 'password'; }}
      inputs[name] = input; f.appendChild(input);
    }});
    var submit = el('button', 'Connect'); submit.type = 'submit'; f.appendChild(submit);
    f.onsubmit = function (event) {{
      event.preventDefault();
      var body = {{}}; fields.forEach(function (name) {{ body[name] = inputs[name].value; }});
      fetch(api + route + encodeURIComponent(key) + query(), {{method: 'POST',
        headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify(body)}})
        .then(function (r) {{
          return r.json().then(function (b) {{ if (!r.ok) {{ throw b.error || {{}}; }} return b; }});
        }})
        .then(function () {{ done(status, true, 'Connected'); }},
              function (e) {{ done(status, false, 'Failed: ' + (e.message || e.code || 'error')); }});
    }};
    return f;
  }}
  function show(integration, provider) {{
    var item = el('li'), status = el('span', '', 'status'), mode = provider.auth_mode;
    item.id = 'integration-' + integration.unique_key;
    item.appendChild(el('strong', integration.display_name || integration.unique_key));
    item.appendChild(status);
    if (mode === 'OAUTH2') {{
      var button = el('button', 'Connect');
      button.onclick = function () {{ popup(integration.unique_key, status); }};
      item.appendChild(button);
    }} else if (mode === 'API_KEY') {{
      item.appendChild(form(integration.unique_key, ['apiKey'], '/api-auth/api-key/', status));
    }} else if (mode === 'BASIC') {{
      item.appendChild(form(integration.unique_key, ['username', 'password'], '/api-auth/basic/', status));
    }} else {{ item.appendChild(el('p', 'This kind of connection cannot be made from this page yet.')); }}
    document.getElementById('integrations').appendChild(item);
  }}
  call('/connect/session').then(function (session) {{
    var user = session.data.endUser;
    document.getElementById('intro').textContent = user && (user.display_name || user.email)
      ? 'Connecting for ' + (user.display_name || user.email) + '.' : 'Choose what to connect.';
    return call('/integrations');
  }}).then(function (list) {{
    list.data.forEach(function (integration) {{
      call('/providers/' + encodeURIComponent(integration.provider))
        .then(function (p) {{ show(integration, p.data); }});
    }});
  }}).catch(function (e) {{
    var intro = document.getElementById('intro');
    intro.textContent = 'This link is invalid or has expired (' + (e.code || 'error') + ').'; intro.className = 'error';
  }});
}})();
</script></body></html>
"""


@bp.get("/connect")
@bp.get("/connect/")
def page():
    from services.auth.context import ctx

    nonce = secrets.token_urlsafe(16)
    ws_path = ctx().settings.NANGO_SERVER_WEBSOCKETS_PATH
    body = PAGE.format(nonce=nonce, ws_path='"' + ws_path.replace('"', "") + '"')
    return Response(body, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                   "connect-src 'self' ws: wss:; frame-ancestors 'none'"})
