/* The connect page. Two ways in:
 * - connect_link: opened at /connect/?session_token=… in a tab of its own;
 * - @nangohq/frontend's openConnectUI: framed at /connect/?apiURL=…&lang=…&theme=…&detectClosedAuthWindow=…;
 *   it posts {type: 'ready'} to the embedding page, gets {type: 'session_token', sessionToken}, and posts
 *   'settings_changed', 'connect' (the AuthResult), 'error' ({errorType, errorMessage}) and 'close'.
 * Messages go to the embedding page's origin only, and only if it is one the server allows (the same list
 * as the page's CSP frame-ancestors). The page talks to Authport's public API with the session token. */
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('connect-config').textContent);
  var S = config.strings;
  var query = new URLSearchParams(location.search);
  var embedded = window.parent !== window;
  var parentOrigin = null;
  var token = null;
  var api = chooseApi(query.get('apiURL'));
  var detectClosed = query.get('detectClosedAuthWindow') === 'true';
  var integrations = [];
  var connected = {};
  var current = null;  // {integration, provider, mode, fields}
  var lastFailure = null;
  var $ = function (id) { return document.getElementById(id); };

  function text(key, values) {
    var out = S[key] || key;
    Object.keys(values || {}).forEach(function (name) { out = out.split('{' + name + '}').join(values[name]); });
    return out;
  }

  function chooseApi(wanted) {
    if (!wanted) { return location.origin; }
    try {
      var origin = new URL(wanted).origin;
      if (origin === location.origin || config.apiOrigins.indexOf(origin) >= 0) { return wanted.replace(/\/+$/, ''); }
    } catch (e) { /* not a URL: use our own origin */ }
    return location.origin;
  }

  /* ---- the embedding page ------------------------------------------------------------------ */
  function allowedParent(origin) { return config.frameOrigins.indexOf(origin) >= 0 || origin === location.origin; }

  function post(message) {
    if (!embedded) { return; }
    var targets = parentOrigin ? [parentOrigin] : parentCandidates();
    // A message whose target origin is not the parent's is dropped by the browser: only the real,
    // allowed embedding page can receive it.
    targets.forEach(function (origin) { window.parent.postMessage(message, origin); });
  }

  function parentCandidates() {
    var ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length) { return allowedParent(ancestors[0]) ? [ancestors[0]] : []; }
    return config.frameOrigins.concat([location.origin]);
  }

  window.addEventListener('message', function (event) {
    if (!embedded || event.source !== window.parent || !allowedParent(event.origin)) { return; }
    if (parentOrigin && event.origin !== parentOrigin) { return; }
    var data = event.data;
    if (data && data.type === 'session_token' && typeof data.sessionToken === 'string') {
      parentOrigin = event.origin;
      if (data.sessionToken !== token) { start(data.sessionToken); }
    }
  });

  function close() {
    if (embedded) { post({type: 'close'}); }
  }

  /* ---- the API ----------------------------------------------------------------------------- */
  function call(path, options) {
    options = options || {};
    options.headers = Object.assign({'Authorization': 'Bearer ' + token}, options.headers || {});
    return fetch(api + path, options).then(function (answer) {
      return answer.json().catch(function () { return {}; }).then(function (body) {
        if (!answer.ok) { throw Object.assign({status: answer.status}, body.error || {}); }
        return body;
      });
    }, function () { throw {code: 'network'}; });
  }

  function flowQuery(params) {
    var q = '?connect_session_token=' + encodeURIComponent(token);
    Object.keys(params || {}).forEach(function (name) {
      if (params[name] !== '') { q += '&params[' + encodeURIComponent(name) + ']=' + encodeURIComponent(params[name]); }
    });
    return q;
  }

  /* ---- what a person reads when something fails -------------------------------------------- */
  var SESSION_CODES = ['unknown_connect_session_token', 'invalid_connect_session_token_format', 'missing_auth_header',
    'malformed_auth_header', 'unauthorized', 'connect_session_expired'];

  function explain(error, name) {
    var code = error.code || error.error_type || '';
    var detail = (error.message || error.error_desc || '').slice(0, 300);
    if (SESSION_CODES.indexOf(code) >= 0) { return {key: 'err_session', type: 'unknown_error'}; }
    if (code === 'no_session') { return {key: 'err_no_session', type: 'missing_connect_session_token'}; }
    if (code === 'network') { return {key: 'err_network', type: 'unknown_error'}; }
    if (code === 'popup_blocked') { return {key: 'err_popup_blocked', type: 'blocked_by_browser'}; }
    if (code === 'window_closed') { return {key: 'err_window_closed', type: 'window_closed'}; }
    if (code === 'too_many_request') { return {key: 'err_rate_limited', type: 'unknown_error'}; }
    if (code === 'integration_not_allowed') { return {key: 'err_not_allowed', type: 'unknown_error'}; }
    if (code === 'callback_err' && /denied|declin|not grant/i.test(detail)) { return {key: 'err_denied', type: 'unknown_error'}; }
    if (code === 'connection_test_failed' || code === 'invalid_credentials') {
      return {key: 'err_credentials', type: 'connection_test_failed'};
    }
    if (code === 'invalid_body' || code === 'invalid_query_params' || code === 'invalid_connection_config' ||
        code === 'url_param_err') {
      return {key: 'err_invalid_input', type: 'connection_validation_failed'};
    }
    if ((code === 'token_err' || code === 'callback_err') && detail) {
      return {key: 'err_provider', type: 'unknown_error', detail: detail};
    }
    return {key: 'err_generic', type: 'unknown_error'};
  }

  function fail(error, retry) {
    var name = current ? current.name : '';
    var why = explain(error || {}, name);
    var message = text(why.key, {name: name, detail: why.detail || ''});
    $('alert-text').textContent = message;
    $('retry').hidden = !retry;
    lastFailure = retry || null;
    $('alert').hidden = false;
    $('alert').focus();
    setBusy(false);
    post({type: 'error', payload: {errorType: why.type, errorMessage: message}});
  }

  function clearAlert() { $('alert').hidden = true; lastFailure = null; }

  function fatal(error) {
    show(null);
    $('intro').hidden = true;
    fail(error, null);
    $('app').setAttribute('aria-busy', 'false');
  }

  /* ---- views ------------------------------------------------------------------------------- */
  function show(view) {
    ['list-view', 'detail-view', 'success-view'].forEach(function (id) { $(id).hidden = id !== view; });
  }

  function el(tag, attrs, content) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (content) { node.textContent = content; }
    return node;
  }

  function renderList() {
    var list = $('integrations');
    list.textContent = '';
    integrations.forEach(function (item) {
      var li = el('li', {id: 'integration-' + item.unique_key});
      var button = el('button', {type: 'button', 'class': 'integration'});
      var logo = el('img', {'class': 'logo', src: item.logo, alt: '', width: '32', height: '32'});
      button.appendChild(logo);
      button.appendChild(el('span', {'class': 'name'}, item.display_name || item.unique_key));
      var status = el('span', {'class': 'status'}, connected[item.unique_key] ? S.connected : '');
      button.appendChild(status);
      button.setAttribute('aria-label', (item.display_name || item.unique_key) +
        (connected[item.unique_key] ? ' (' + S.connected + ')' : ''));
      button.addEventListener('click', function () { openDetail(item); });
      li.appendChild(button);
      list.appendChild(li);
    });
    $('search-row').hidden = integrations.length <= 5;
    filter();
  }

  function filter() {
    var term = $('search').value.trim().toLowerCase();
    var shown = 0;
    integrations.forEach(function (item) {
      var hit = !term || (item.display_name || '').toLowerCase().indexOf(term) >= 0 ||
        item.unique_key.toLowerCase().indexOf(term) >= 0 || item.provider.toLowerCase().indexOf(term) >= 0;
      $('integration-' + item.unique_key).hidden = !hit;
      shown += hit ? 1 : 0;
    });
    $('no-match').hidden = shown > 0 || integrations.length === 0;
  }

  /* ---- one integration: its form, built from what its provider declares ---------------------- */
  var MODE_FIELDS = {
    API_KEY: [['apiKey', true]], BASIC: [['username', false], ['password', true]],
    TBA: [['token_id', false], ['token_secret', true]], OAUTH2_CC: [['client_id', false], ['client_secret', true]],
    SIGNATURE: [['username', false], ['password', true]], NONE: [],
    BILL: [['username', false], ['password', true], ['organization_id', false], ['dev_key', true]],
    AWS_SIGV4: [['role_arn', false], ['region', false, true]]  // [name, secret, optional]
  };
  var DECLARED_FIELDS = ['JWT', 'TWO_STEP'];  // the provider's `credentials` entry lists what to ask for
  var ROUTES = {API_KEY: '/api-auth/api-key/', BASIC: '/api-auth/basic/', TBA: '/auth/tba/', OAUTH2_CC: '/oauth2/auth/',
    NONE: '/auth/unauthenticated/', JWT: '/auth/jwt/', TWO_STEP: '/auth/two-step/', SIGNATURE: '/auth/signature/',
    BILL: '/auth/bill/', AWS_SIGV4: '/auth/aws-sigv4/'};
  var POPUP_MODES = ['OAUTH2', 'OAUTH1'];

  function fieldsOf(provider, mode) {
    var fields = [];
    var declared = provider.credentials || {};
    var asked = DECLARED_FIELDS.indexOf(mode) >= 0
      ? Object.keys(declared).map(function (name) { return [name, false]; }) : (MODE_FIELDS[mode] || []);
    asked.forEach(function (pair) {
      var spec = declared[pair[0]] || (pair[2] ? {optional: true} : {});
      fields.push(field(pair[0], spec, 'credential', spec.secret === undefined ? pair[1] : spec.secret === true));
    });
    var config = provider.connection_config || {};
    Object.keys(config).forEach(function (name) {
      var spec = config[name] || {};
      if (spec.automated || spec.hidden) { return; }
      fields.push(field(name, spec, 'param', spec.secret === true));
    });
    templated(provider).forEach(function (used) {
      if (!config[used.name]) { fields.push(field(used.name, {optional: used.optional}, 'param', false)); }
    });
    return fields;
  }

  // Values the provider's URLs need (`${connectionConfig.x}`) that its entry does not declare;
  // one that has an alternative (`A || B`) is optional.
  function templated(provider) {
    var found = {};
    [provider.authorization_url, provider.token_url, (provider.proxy || {}).base_url].forEach(function (url) {
      if (typeof url !== 'string') { return; }
      var pattern = /\$\{connectionConfig\.([A-Za-z0-9_]+)\}/g;
      var match;
      while ((match = pattern.exec(url)) !== null) {
        found[match[1]] = (found[match[1]] === undefined ? true : found[match[1]]) && url.indexOf('||') >= 0;
      }
    });
    return Object.keys(found).map(function (name) { return {name: name, optional: found[name]}; });
  }

  function field(name, spec, kind, secret) {
    return {name: name, kind: kind, secret: secret, title: spec.title || S['field_' + name] || name,
      description: spec.description || '', pattern: spec.pattern || '', example: spec.example || '',
      optional: spec.optional === true};
  }

  function openDetail(item) {
    clearAlert();
    $('app').setAttribute('aria-busy', 'true');
    call('/providers/' + encodeURIComponent(item.provider)).then(function (answer) {
      var provider = answer.data;
      var mode = provider.auth_mode;
      current = {integration: item, provider: provider, mode: mode, name: item.display_name || provider.display_name ||
        item.unique_key, fields: fieldsOf(provider, mode)};
      renderDetail();
    }, function (error) { fail(error, function () { openDetail(item); }); })
      .then(function () { $('app').setAttribute('aria-busy', 'false'); });
  }

  function renderDetail() {
    var supported = POPUP_MODES.indexOf(current.mode) >= 0 || ROUTES[current.mode];
    $('detail-title').textContent = current.name;
    $('detail-logo').src = current.integration.logo;
    $('detail-text').textContent = !supported ? S.unsupported
      : POPUP_MODES.indexOf(current.mode) >= 0 ? text('oauth_text', {name: current.name}) : '';
    $('detail-text').hidden = !$('detail-text').textContent;
    var box = $('fields');
    box.textContent = '';
    current.fields.forEach(function (f) { box.appendChild(renderField(f)); });
    $('connect-submit').textContent = text('connect_with', {name: current.name});
    $('connect-form').hidden = !supported;
    $('waiting').hidden = true;
    show('detail-view');
    var first = box.querySelector('input');
    (first || $('connect-submit')).focus();
  }

  function renderField(f) {
    var id = 'field-' + f.name;
    var wrap = el('div', {'class': 'field'});
    var label = el('label', {'for': id}, f.title);
    if (f.optional) { label.appendChild(el('span', {'class': 'optional'}, ' (' + S.optional + ')')); }
    wrap.appendChild(label);
    var described = [];
    var hint = f.description + (f.example ? (f.description ? ' ' : '') + text('example', {detail: f.example}) : '');
    if (hint) { wrap.appendChild(el('span', {'class': 'hint', id: id + '-hint'}, hint)); described.push(id + '-hint'); }
    var input = el('input', {id: id, name: f.name, type: f.secret ? 'password' : 'text', autocomplete: 'off',
      spellcheck: 'false', 'data-kind': f.kind});
    if (!f.optional) { input.setAttribute('aria-required', 'true'); }
    var problem = el('span', {'class': 'problem', id: id + '-problem', hidden: ''});
    described.push(id + '-problem');
    input.setAttribute('aria-describedby', described.join(' '));
    if (f.secret) {
      var row = el('div', {'class': 'secret'});
      var toggle = el('button', {type: 'button', 'aria-controls': id, 'aria-pressed': 'false'}, S.show);
      toggle.addEventListener('click', function () {
        var hidden = input.type === 'password';
        input.type = hidden ? 'text' : 'password';
        toggle.textContent = hidden ? S.hide : S.show;
        toggle.setAttribute('aria-pressed', String(hidden));
      });
      row.appendChild(input);
      row.appendChild(toggle);
      wrap.appendChild(row);
    } else {
      wrap.appendChild(input);
    }
    wrap.appendChild(problem);
    return wrap;
  }

  function readForm() {
    var values = {credential: {}, param: {}};
    var firstBad = null;
    current.fields.forEach(function (f) {
      var input = $('field-' + f.name);
      var problem = $('field-' + f.name + '-problem');
      var value = input.value.trim();
      var message = '';
      if (!value && !f.optional) { message = S.required; }
      else if (value && f.pattern) {
        try { if (!new RegExp(f.pattern).test(value)) { message = S.bad_format; } } catch (e) { /* unusable pattern */ }
      }
      problem.textContent = message;
      problem.hidden = !message;
      input.setAttribute('aria-invalid', message ? 'true' : 'false');
      if (message && !firstBad) { firstBad = input; }
      values[f.kind][f.name] = value;
    });
    if (firstBad) { firstBad.focus(); return null; }
    return values;
  }

  function setBusy(busy) {
    $('connect-submit').disabled = busy;
    $('app').setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  function submit(event) {
    event.preventDefault();
    clearAlert();
    var values = readForm();
    if (!values) { return; }
    setBusy(true);
    var retry = function () { $('connect-form').requestSubmit(); };
    if (POPUP_MODES.indexOf(current.mode) >= 0) { popup(values.param, retry); return; }
    call(ROUTES[current.mode] + encodeURIComponent(current.integration.unique_key) + flowQuery(values.param), {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(values.credential)
    }).then(function (answer) {
      succeeded({providerConfigKey: answer.providerConfigKey, connectionId: answer.connectionId});
    }, function (error) { fail(error, retry); });
  }

  /* ---- the OAuth popup: the flow's result arrives on the gateway's websocket ----------------- */
  function popup(params, retry) {
    var win = window.open('', '_blank', 'width=520,height=680');
    if (!win) { fail({code: 'popup_blocked'}, retry); return; }
    var key = current.integration.unique_key;
    var finished = false;
    var socket = new WebSocket(api.replace(/^http/, 'ws') + config.wsPath);
    $('waiting').textContent = text('waiting', {name: current.name});
    $('waiting').hidden = false;
    function finish() { finished = true; $('waiting').hidden = true; try { socket.close(); } catch (e) { /* closed */ } }
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.message_type === 'connection_ack') {
        win.location = api + '/oauth/connect/' + encodeURIComponent(key) + flowQuery(params) +
          '&ws_client_id=' + encodeURIComponent(data.ws_client_id);
      } else if (data.message_type === 'success') {
        finish();
        succeeded({providerConfigKey: data.provider_config_key, connectionId: data.connection_id,
          isPending: data.is_pending === true});
      } else if (data.message_type === 'error') {
        finish();
        fail(data, retry);
      }
    };
    socket.onerror = function () { if (!finished) { finish(); try { win.close(); } catch (e) { /* gone */ } fail({code: 'network'}, retry); } };
    if (detectClosed) {
      var timer = setInterval(function () {
        if (finished) { clearInterval(timer); return; }
        if (win.closed) {
          clearInterval(timer);
          // The result page closes itself after a success: give its websocket message time to arrive.
          setTimeout(function () { if (!finished) { finish(); fail({code: 'window_closed'}, retry); } }, 1500);
        }
      }, 400);
    }
  }

  function succeeded(result) {
    connected[result.providerConfigKey] = true;
    setBusy(false);
    post({type: 'connect', payload: result});
    $('success-title').textContent = text('success_title', {name: current.name});
    show('success-view');
    $('success-title').focus();
  }

  /* ---- start: the session, then its integrations ------------------------------------------- */
  function start(sessionToken) {
    token = sessionToken;
    clearAlert();
    $('intro').hidden = false;
    $('intro').textContent = S.loading;
    call('/connect/session').then(function (session) {
      var user = session.data.endUser;
      var name = user && (user.display_name || user.email);
      $('intro').textContent = session.data.isReconnecting ? S.intro_reconnect
        : name ? text('intro_user', {name: name}) : S.intro;
      post({type: 'settings_changed', payload: {theme: config.palette, defaultTheme: config.theme, showWatermark: false}});
      return call('/integrations');
    }).then(function (list) {
      integrations = list.data;
      $('app').setAttribute('aria-busy', 'false');
      if (!integrations.length) { $('intro').textContent = S.empty; }
      renderList();
      show('list-view');
      if (integrations.length === 1) { openDetail(integrations[0]); }
    }).catch(fatal);
  }

  $('search').addEventListener('input', filter);
  $('connect-form').addEventListener('submit', submit);
  $('back').addEventListener('click', function () { clearAlert(); renderList(); show('list-view'); $('search').focus(); });
  $('retry').addEventListener('click', function () { var again = lastFailure; clearAlert(); if (again) { again(); } });
  $('done').addEventListener('click', function () {
    if (embedded) { close(); return; }
    renderList();
    show('list-view');
  });
  $('close').addEventListener('click', close);
  document.addEventListener('keydown', function (event) { if (event.key === 'Escape' && embedded) { close(); } });

  if (embedded) {
    document.body.classList.add('embedded');
    $('close').hidden = false;
    post({type: 'ready'});
  } else if (query.get('session_token')) {
    start(query.get('session_token'));
  } else {
    fatal({code: 'no_session'});
  }
})();
