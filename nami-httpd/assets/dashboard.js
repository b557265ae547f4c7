// nami-httpd dashboard: plain JavaScript, no framework, no build step, nothing from elsewhere.
//
// Data: GET /api/dashboard once, then the server-sent events of /api/events ("snapshot": what
// the page shows, "terminal": each terminal event as it happens). Actions call the REST API.
// Auth: on a 401 the page asks for the bearer token and keeps it in sessionStorage (this tab
// only); fetch sends it as `Authorization: Bearer`, EventSource (which cannot send headers) as
// `?token=` on /api/events only.
'use strict';

(() => {
  const TOKEN_KEY = 'nami-httpd-token';
  const $ = (id) => document.getElementById(id);

  const page = {
    snapshot: null,
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    events: null,
    leaving: false,
    activity: new Map(), // terminal key -> {text, at, kind}
    journalIds: null, // ids shown last time (null before the first render)
    prefilled: false,
    tokenPrompt: null,
    recheckTimer: 0,
  };

  // ---------------------------------------------------------------------------------------
  // Small DOM helpers (text only: nothing from the daemon is ever parsed as HTML)

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'className') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, value) {
    const node = $(id);
    const text = value === null || value === undefined || value === '' ? '–' : String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  function badge(kind, text) {
    return el('span', { className: 'badge ' + kind, text });
  }

  /** Replaces a tbody's rows when their content changed, keeping the keyboard focus. */
  function replaceRows(tbody, signature, rows) {
    if (tbody.dataset.signature === signature) return false;
    const focused = document.activeElement && tbody.contains(document.activeElement)
      ? document.activeElement.dataset.focusId : null;
    tbody.replaceChildren(...rows);
    tbody.dataset.signature = signature;
    labelCells(tbody);
    if (focused) {
      const again = tbody.querySelector('[data-focus-id="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
    return true;
  }

  /**
   * Explicit table roles, and each cell's column name in `data-label`: on phones the rows are
   * shown as stacked cards (CSS), which would otherwise lose the table semantics.
   */
  function labelCells(tbody) {
    const table = tbody.closest('table');
    if (!table) return;
    const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    for (const row of tbody.rows) {
      row.setAttribute('role', 'row');
      [...row.cells].forEach((cell, index) => {
        cell.setAttribute('role', cell.tagName === 'TH' ? 'rowheader' : 'cell');
        if (names[index]) cell.dataset.label = names[index];
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  let sayTimer = 0;
  function say(text, kind) {
    const status = $('status');
    status.dataset.kind = kind || 'info';
    status.textContent = text;
    clearTimeout(sayTimer);
    if (kind !== 'error') sayTimer = setTimeout(() => { status.textContent = ''; }, 12000);
  }

  function setLive(state, detail) {
    const live = $('live');
    live.dataset.state = state;
    const text = {
      live: 'Live',
      connecting: 'Connecting…',
      reconnecting: 'Reconnecting…',
      offline: 'Not connected',
    }[state] + (detail ? ' (' + detail + ')' : '');
    if ($('live-text').textContent !== text) $('live-text').textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // The API

  async function api(method, path, body) {
    for (;;) {
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (page.token) headers.Authorization = 'Bearer ' + page.token;
      let response;
      try {
        response = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: 'no-store',
          credentials: 'omit',
        });
      } catch (error) {
        throw new Error('the daemon cannot be reached');
      }
      if (response.status === 401) {
        await askToken(Boolean(page.token));
        continue;
      }
      const text = await response.text();
      let value = text;
      try { value = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
      if (response.status === 400 && value && /serves HTTPS/.test(value.statusMessage || '')) {
        // Someone switched the port to HTTPS: follow.
        goScheme('https');
        throw new Error('this port now serves HTTPS: reconnecting');
      }
      return { status: response.status, body: value };
    }
  }

  function askToken(refused) {
    if (page.tokenPrompt) return page.tokenPrompt;
    const dialog = $('token-dialog');
    $('token-error').hidden = !refused;
    $('token-input').value = '';
    page.tokenPrompt = new Promise((resolve) => {
      const form = $('token-form');
      const submit = (event) => {
        event.preventDefault();
        const token = $('token-input').value.trim();
        if (!token) {
          $('token-input').focus();
          return;
        }
        form.removeEventListener('submit', submit);
        page.token = token;
        sessionStorage.setItem(TOKEN_KEY, token);
        dialog.close();
        page.tokenPrompt = null;
        resolve();
        connectEvents();
      };
      form.addEventListener('submit', submit);
    });
    if (!dialog.open) dialog.showModal();
    $('token-input').focus();
    return page.tokenPrompt;
  }

  /** A summary of any answer of the API, for the status line. */
  function describe(body) {
    if (body === null || body === undefined) return 'no answer';
    if (typeof body !== 'object') return String(body);
    if (body.statusMessage) return (body.statusCode ? body.statusCode + ': ' : '') + body.statusMessage;
    if (body.message) return body.message;
    if (body.error) return body.error;
    if (body.isConnected) return body.isConnected;
    return JSON.stringify(body);
  }

  /** Runs an action with its button busy; reports failures in the status line. */
  async function act(button, work) {
    if (button) {
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
    }
    try {
      await work();
    } catch (error) {
      say('Failed: ' + error.message, 'error');
    } finally {
      if (button) {
        button.disabled = false;
        button.removeAttribute('aria-busy');
      }
    }
  }

  function expectOk(answer, what) {
    if (answer.status >= 400) throw new Error(what + ': ' + describe(answer.body));
    return answer.body;
  }

  // ---------------------------------------------------------------------------------------
  // Terminals

  function tcpTarget() {
    const ip = $('tcp-ip').value.trim();
    const port = Number($('tcp-port').value);
    if (!ip) {
      invalid('tcp-ip', 'Enter the terminal\'s IP address.');
      return null;
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      invalid('tcp-port', 'Enter a port from 1 to 65535.');
      return null;
    }
    $('tcp-ip').removeAttribute('aria-invalid');
    $('tcp-port').removeAttribute('aria-invalid');
    return { ip, port };
  }

  function invalid(id, message) {
    const input = $(id);
    input.setAttribute('aria-invalid', 'true');
    input.dataset.touched = '';
    input.focus();
    say(message, 'error');
  }

  async function nextEcrReference() {
    const register = $('register-no').value.trim();
    if (!/^\d{8}$/.test(register)) {
      invalid('register-no', 'The cash register number has 8 digits.');
      throw new Error('the cash register number has 8 digits');
    }
    $('register-no').removeAttribute('aria-invalid');
    localStorage.setItem('nami-httpd-register', register);
    const body = expectOk(await api('POST', '/nextEcrReference', { cashRegisterNo: register }), 'ECR reference');
    return body.ecrReferenceNo;
  }

  /** Sends one transaction to a TCP target or to the COM connection, and shows the answer. */
  async function transact(target, txnType, fields) {
    const ecrReferenceNo = await nextEcrReference();
    const paymentRequest = Object.assign({ txnType, ecrReferenceNo, jsonResponse: true }, fields || {});
    const where = target === 'com' ? 'COM' : target.ip + ':' + target.port;
    say(label(txnType) + ' sent to ' + where + ' (' + ecrReferenceNo + ')…');
    const answer = target === 'com'
      ? await api('POST', '/performTransactionCOM', paymentRequest)
      : await api('POST', '/performTransactionTCPIP', { tcpipcomData: target, paymentRequest });
    showResult(txnType, where, ecrReferenceNo, answer.body || {});
  }

  function label(txnType) {
    return { REGISTER: 'Register', CHECK_STATUS: 'Check status', PURCHASE: 'Purchase' }[txnType] || txnType;
  }

  function showResult(txnType, where, ecrReferenceNo, body) {
    const parsed = body.parsedTransaction || {};
    let kind = 'bad';
    let verdict = body.statusCode || 'ERROR';
    if (body.outcomeUnknown) {
      kind = 'unknown';
      verdict = 'Outcome unknown';
    } else if (body.approved) {
      kind = 'ok';
      verdict = txnType === 'REGISTER' ? 'Registered' : 'Approved';
    } else if (String(body.statusCode) === '200') {
      verdict = 'Declined';
    }
    const message = parsed.responseMessage || body.statusMessage || '';
    page.activity.set(where, {
      kind: kind === 'ok' ? 'approved' : kind === 'unknown' ? 'unknown' : 'declined',
      text: label(txnType) + ': ' + verdict,
      at: new Date(),
    });
    renderTerminals();
    const result = $('result');
    result.hidden = false;
    result.dataset.kind = kind;
    result.dataset.ecr = body.ecrReferenceNo || ecrReferenceNo;
    result.dataset.txn = txnType;
    const facts = el('dl', {},
      el('dt', { text: 'ECR reference' }), el('dd', { className: 'mono', text: body.ecrReferenceNo || ecrReferenceNo }),
      el('dt', { text: 'Status code' }), el('dd', { text: body.statusCode || '–' }),
      el('dt', { text: 'Response code' }), el('dd', { text: body.responseCode || '–' }),
      el('dt', { text: 'Message' }), el('dd', { text: message || '–' }),
      body.terminalId ? el('dt', { text: 'Terminal ID' }) : null,
      body.terminalId ? el('dd', { className: 'mono', text: body.terminalId }) : null,
      parsed.amount ? el('dt', { text: 'Amount' }) : null,
      parsed.amount ? el('dd', { text: parsed.amount }) : null);
    result.replaceChildren(el('h3', { text: label(txnType) + ' on ' + where + ': ' + verdict }), facts);
    const same = message.toLowerCase() === verdict.toLowerCase();
    say(label(txnType) + ' on ' + where + ': ' + verdict + (message && !same ? ' — ' + message : ''),
      kind === 'ok' ? 'ok' : kind === 'unknown' ? 'info' : 'error');
  }

  async function tcpAction(action, button, target) {
    target = target || tcpTarget();
    if (!target) return;
    await act(button, async () => {
      if (action === 'register') return transact(target, 'REGISTER');
      if (action === 'status') return transact(target, 'CHECK_STATUS');
      const path = action === 'connect' ? '/tcp-ip/connect' : '/tcp-ip/disconnect';
      const body = expectOk(await api('POST', path, { tcpipcomData: target }), action);
      const where = target.ip + ':' + target.port;
      if (action === 'connect') {
        // A target that never connected is not kept as a "Disconnected" connection: say so.
        say(body.connectionStatus ? 'Connected to ' + where
          : 'Could not reach ' + where + ': ' + describe(body) + ' (not listed among the terminals until it connects)',
        body.connectionStatus ? 'ok' : 'error');
      } else {
        say('Disconnected from ' + where, 'ok');
      }
      refreshSoon();
    });
  }

  async function comAction(action, button) {
    await act(button, async () => {
      if (action === 'register') return transact('com', 'REGISTER');
      if (action === 'status') return transact('com', 'CHECK_STATUS');
      const answer = await api('POST', '/com/disconnect');
      say(answer.body === 0 ? 'COM connection closed' : 'There was no COM connection', answer.body === 0 ? 'ok' : 'info');
      refreshSoon();
    });
  }

  async function comConnect(port, button) {
    const text = String(port).trim();
    if (!text) {
      invalid('com-port', 'Enter a COM port number, COMn or a device path.');
      return;
    }
    await act(button, async () => {
      const value = /^\d+$/.test(text) ? Number(text) : text;
      const body = expectOk(await api('POST', '/com/connect', { port: value }), 'COM connect');
      say(body.message || describe(body), body.success ? 'ok' : 'error');
      refreshSoon();
    });
  }

  // ---------------------------------------------------------------------------------------
  // Rendering a snapshot

  function render(snapshot) {
    if (!snapshot || typeof snapshot !== 'object') return;
    page.snapshot = snapshot;
    renderHealth(snapshot.health || {}, snapshot.tls || {});
    renderTerminals();
    renderComPorts(snapshot.comPorts || []);
    renderJournal((snapshot.journal && snapshot.journal.transactions) || []);
    renderSimulator(snapshot.simulator);
    prefill(snapshot);
  }

  function renderHealth(health, tls) {
    setText('h-status', health.status);
    setText('h-version', health.version);
    setText('f-version', health.version);
    setText('h-uptime', health.uptime);
    setText('h-memory', health.memoryUsedMb !== undefined
      ? health.memoryUsedMb + ' MB of ' + health.memoryMaxMb + ' MB' : null);
    setText('h-port', health.port);
    setText('h-scheme', (health.scheme || tls.scheme || '').toUpperCase());
    setText('h-unknown', health.needsAttention > 0
      ? health.unknownOutcomes + ' (' + health.needsAttention + ' need attention: recovery has not settled them)'
      : health.unknownOutcomes);
    setText('h-auth', health.authRequired ? 'Bearer token' : 'None (local only)');
    setText('h-fingerprint', health.tlsFingerprintSha256 || tls.tlsFingerprintSha256
      || 'No certificate yet (made at the first switch)');
    setText('h-host', location.host);
    const warnings = health.stateWarnings || [];
    const list = $('h-warnings');
    list.hidden = warnings.length === 0;
    replaceRows(list, JSON.stringify(warnings), warnings.map((w) => el('li', { text: w })));
    const https = (health.scheme || tls.scheme) === 'https';
    const toggle = $('tls-toggle');
    toggle.textContent = https ? 'Switch to HTTP' : 'Switch to HTTPS';
    toggle.disabled = Boolean(tls.forcedByConfig);
    toggle.title = tls.forcedByConfig ? 'Set by the configuration (flag or NAMI_TLS)' : '';
    $('recover-all').hidden = !(health.unknownOutcomes > 0);
  }

  /** The terminals the daemon knows: TCP connections, registrations, the COM connection. */
  function terminals() {
    const snapshot = page.snapshot || {};
    const health = snapshot.health || {};
    const registration = snapshot.registration || {};
    const rows = new Map();
    const row = (key) => {
      if (!rows.has(key)) rows.set(key, { key, com: key === 'COM', link: null, terminalId: null, registered: false });
      return rows.get(key);
    };
    for (const [key, link] of Object.entries(health.tcpConnections || {})) row(key).link = link;
    const statuses = registration.terminals || (registration.registered ? [registration] : []);
    for (const status of statuses) {
      const key = status.comPort !== undefined ? 'COM' : status.ip + ':' + status.port;
      const entry = row(key);
      entry.registered = Boolean(status.registered);
      entry.terminalId = status.terminalId || null;
      if (status.comPort !== undefined) entry.device = status.comPort;
    }
    if (health.comConnected) {
      const entry = row('COM');
      entry.link = 'Connected';
      entry.device = health.activeComPort || entry.device;
    }
    return [...rows.values()].sort((a, b) => (a.com === b.com ? a.key.localeCompare(b.key) : a.com ? -1 : 1));
  }

  function renderTerminals() {
    const list = terminals();
    const tbody = $('terminal-table').querySelector('tbody');
    const signature = JSON.stringify(list) + JSON.stringify(list.map((t) => currentActivity(t.key)));
    $('terminal-empty').hidden = list.length > 0;
    $('terminal-table').parentElement.hidden = list.length === 0;
    replaceRows(tbody, signature, list.map((t) => {
      const name = t.com ? 'COM ' + (t.device || '') : t.key;
      const connected = t.link === 'Connected';
      const link = t.link ? badge(connected ? 'connected' : 'disconnected', t.link) : badge('neutral', 'Not connected');
      const reg = t.registered
        ? el('span', {}, badge('registered', 'Registered'), el('span', { className: 'detail mono', text: t.terminalId || '' }))
        : badge('unregistered', 'Not registered');
      const activity = currentActivity(t.key);
      const activityCell = activity
        ? el('span', {}, badge(activity.kind, activity.text), el('span', { className: 'detail', text: activity.at.toLocaleTimeString() }))
        : el('span', { className: 'detail', text: '–' });
      const target = t.com ? null : splitKey(t.key);
      const button = (action, text) => el('button', {
        type: 'button',
        className: 'small',
        'aria-label': text + ' ' + name,
        'data-focus-id': action + '@' + t.key,
        text,
        onclick: (event) => (t.com ? comAction(action, event.currentTarget) : tcpAction(action, event.currentTarget, target)),
      });
      const actions = el('div', { className: 'actions' },
        !t.com && !connected ? button('connect', 'Connect') : null,
        button('register', 'Register'),
        button('status', 'Check status'),
        connected || t.com ? button('disconnect', 'Disconnect') : null);
      return el('tr', { 'data-terminal': t.key },
        el('th', { scope: 'row', className: 'mono', text: name }),
        el('td', {}, link),
        el('td', {}, reg),
        el('td', {}, activityCell),
        el('td', {}, actions));
    }));
  }

  /**
   * The terminal's last event; "Idle" once a busy state is over (a timeout sends no event of its
   * own: nothing of this terminal is pending in the journal any more).
   */
  function currentActivity(key) {
    const activity = page.activity.get(key);
    if (!activity || activity.kind !== 'busy' || Date.now() - activity.at < 3000) return activity;
    const rows = (page.snapshot && page.snapshot.journal && page.snapshot.journal.transactions) || [];
    if (rows.some((r) => r.terminal === key && r.state === 'pending')) return activity;
    return { kind: 'neutral', text: 'Idle', at: activity.at };
  }

  function splitKey(key) {
    const at = key.lastIndexOf(':');
    return { ip: key.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(key.slice(at + 1)) };
  }

  function renderComPorts(ports) {
    const tbody = $('com-table').querySelector('tbody');
    replaceRows(tbody, JSON.stringify(ports), ports.map((p) => {
      const usable = Boolean(p.device_id) && !/^(Reconnecting|Disconnected)/.test(p.description || '');
      const usb = p.vendor_id || p.product_id
        ? p.vendor_id.toString(16).padStart(4, '0') + ':' + p.product_id.toString(16).padStart(4, '0') : '–';
      return el('tr', {},
        el('th', { scope: 'row', className: 'mono', text: p.device_id || '–' }),
        el('td', { text: p.description || '' }),
        el('td', { className: 'mono', text: usb }),
        el('td', {}, usable ? el('button', {
          type: 'button',
          className: 'small',
          'aria-label': 'Connect ' + p.device_id,
          'data-focus-id': 'com@' + p.device_id,
          text: 'Connect',
          onclick: (event) => comConnect(p.device_id, event.currentTarget),
        }) : '–'));
    }));
  }

  const STATES = {
    approved: ['approved', 'Approved'],
    declined: ['declined', 'Declined'],
    error: ['error', 'Not processed'],
    unknown: ['unknown', 'Unknown outcome'],
    pending: ['pending', 'In progress'],
    not_found: ['not_found', 'Not processed (not found)'],
  };

  function renderJournal(rows) {
    const tbody = $('journal-table').querySelector('tbody');
    const previous = page.journalIds;
    page.journalIds = new Set(rows.map((r) => r.id));
    $('journal-empty').hidden = rows.length > 0;
    $('journal-table').parentElement.hidden = rows.length === 0;
    replaceRows(tbody, JSON.stringify(rows), rows.map((r) => {
      const [kind, text] = STATES[r.state] || ['neutral', r.state];
      const unknown = r.state === 'unknown';
      const classes = [unknown ? 'unknown' : '', r.state === 'pending' ? 'pending' : '',
        previous && !previous.has(r.id) ? 'fresh' : ''].filter(Boolean).join(' ');
      const detail = [r.responseCode, r.message].filter(Boolean).join(' · ');
      const when = new Date(r.requestedAt);
      return el('tr', { className: classes || null, 'data-ecr': r.ecrReferenceNo, 'data-state': r.state },
        el('td', {}, el('time', { datetime: r.requestedAt, text: formatTime(when) })),
        el('th', { scope: 'row', className: 'mono', text: r.ecrReferenceNo }),
        el('td', { text: r.txnType }),
        el('td', { className: 'num', text: r.amount ? 'SAR ' + r.amount : '–' }),
        el('td', {}, badge(kind, text), detail ? el('span', { className: 'detail', text: detail }) : null,
          unknown ? el('button', {
            type: 'button',
            className: 'small recover',
            'aria-label': 'Recover ' + r.ecrReferenceNo,
            'data-focus-id': 'recover@' + r.id,
            text: 'Recover',
            onclick: (event) => recover(event.currentTarget),
          }) : null),
        el('td', { className: 'mono', text: r.terminal }));
    }));
  }

  function formatTime(date) {
    if (Number.isNaN(date.getTime())) return '–';
    const today = new Date().toDateString() === date.toDateString();
    return today ? date.toLocaleTimeString() : date.toLocaleString();
  }

  function faultText(f) {
    const arg = f.code !== undefined ? ' ' + f.code : f.ms !== undefined ? ' ' + f.ms + ' ms' : f.writes !== undefined ? ' ×' + f.writes : '';
    const scope = f.scope === 'always' ? 'always' : 'next ' + (f.remaining !== undefined ? f.remaining : 1);
    return f.fault + arg + ' (' + scope + ')';
  }

  function renderSimulator(sim) {
    const section = $('simulator');
    section.hidden = !sim;
    $('nav-simulator').hidden = !sim;
    if (!sim) return;
    setText('s-listen', sim.listen);
    setText('s-pty', sim.pty);
    setText('s-registered', sim.registered ? 'Yes' : 'No');
    setText('s-terminal-id', sim.terminalId);
    setText('s-card', sim.waitingForCard ? 'Waiting for a tap' : sim.cardTap ? 'Card-tap mode: purchases wait' : 'Approves at once');
    setText('s-requests', sim.requestsReceived);
    const faults = sim.faults || [];
    setText('s-faults', faults.length ? faults.map(faultText).join(', ') : 'None');
    $('sim-card-tap').setAttribute('aria-pressed', sim.cardTap ? 'true' : 'false');
    const offline = faults.some((f) => f.fault === 'never-answer' && f.scope === 'always');
    const offlineButton = $('sim-offline');
    offlineButton.dataset.on = offline ? 'true' : 'false';
    offlineButton.textContent = offline ? 'Go online' : 'Go offline';
  }

  /** The first time: the embedded simulator's address in the forms. */
  function prefill(snapshot) {
    if (page.prefilled) return;
    page.prefilled = true;
    const sim = snapshot.simulator;
    if (sim && sim.listen && !$('tcp-ip').value && !$('tcp-port').value) {
      const target = splitKey(sim.listen);
      $('tcp-ip').value = target.ip;
      $('tcp-port').value = target.port;
    }
    if (sim && sim.pty && !$('com-port').value) $('com-port').value = sim.pty;
  }

  // ---------------------------------------------------------------------------------------
  // Live updates

  const EVENT_TEXT = {
    connecting: ['busy', 'Connecting…'],
    connected: ['connected', 'Connected'],
    waitingForCard: ['busy', 'Waiting for card'],
    waitingForTerminal: ['busy', 'Terminal working…'],
    reconnecting: ['busy', 'Reconnecting…'],
    cableDisconnected: ['disconnected', 'Cable disconnected'],
  };

  function onTerminalEvent(event) {
    if (!event || !event.terminal) return;
    let [kind, text] = EVENT_TEXT[event.event] || ['neutral', event.event];
    switch (event.event) {
      case 'requestSent':
        kind = 'busy';
        text = 'Sent ' + event.txnType + (event.ecrReferenceNo ? ' ' + event.ecrReferenceNo : '');
        break;
      case 'responseReceived':
        kind = event.approved ? 'approved' : 'declined';
        text = 'Answered ' + event.responseCode;
        break;
      case 'registered':
        kind = 'registered';
        text = 'Registered as ' + event.terminalId;
        break;
      case 'disconnected':
        kind = 'disconnected';
        text = 'Disconnected: ' + event.reason;
        break;
      case 'outcomeResolved':
        kind = event.state === 'approved' ? 'approved' : 'neutral';
        text = 'Recovered ' + event.ecrReferenceNo + ': ' + event.state;
        say('Unknown outcome ' + event.ecrReferenceNo + ' resolved: ' + event.state, 'ok');
        break;
      case 'waitingForCard':
        say('Terminal ' + event.terminal + ' is waiting for the card' + (page.snapshot && page.snapshot.simulator ? ': press “Tap card”.' : '.'));
        break;
      default:
        break;
    }
    page.activity.set(event.terminal, { kind, text, at: new Date() });
    renderTerminals();
  }

  function connectEvents() {
    if (page.leaving) return;
    if (page.events) page.events.close();
    const url = '/api/events' + (page.token ? '?token=' + encodeURIComponent(page.token) : '');
    const source = new EventSource(url);
    page.events = source;
    source.addEventListener('hello', () => setLive('live'));
    source.addEventListener('snapshot', (message) => {
      setLive('live');
      try { render(JSON.parse(message.data)); } catch (error) { console.error(error); }
    });
    source.addEventListener('terminal', (message) => {
      try { onTerminalEvent(JSON.parse(message.data)); } catch (error) { console.error(error); }
    });
    source.addEventListener('error', () => {
      if (page.leaving || page.events !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a token), the scheme changed, or the daemon stopped: find out with a request.
        setLive('offline');
        scheduleRecheck(1500);
      } else {
        setLive('reconnecting');
      }
    });
  }

  function scheduleRecheck(delay) {
    clearTimeout(page.recheckTimer);
    page.recheckTimer = setTimeout(recheck, delay);
  }

  async function recheck() {
    try {
      const answer = await api('GET', '/api/dashboard');
      if (answer.status === 200) {
        render(answer.body);
        connectEvents();
        return;
      }
      setLive('offline', describe(answer.body));
    } catch (error) {
      setLive('offline', error.message);
    }
    scheduleRecheck(3000);
  }

  let refreshTimer = 0;
  /** A snapshot now (after an action), without waiting for the next event. */
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const answer = await api('GET', '/api/dashboard');
        if (answer.status === 200) render(answer.body);
      } catch (_) { /* the event stream reports the link */ }
    }, 150);
  }

  // ---------------------------------------------------------------------------------------
  // HTTPS switch

  function goScheme(scheme) {
    if (page.leaving) return;
    page.leaving = true;
    if (page.events) page.events.close();
    setLive('reconnecting', scheme.toUpperCase());
    const url = new URL(location.href);
    url.protocol = scheme + ':';
    // The token lives in this origin's sessionStorage; the other scheme is another origin. The
    // fragment never reaches the server, and the new page removes it at once.
    url.hash = page.token ? 'token=' + encodeURIComponent(page.token) : '';
    setTimeout(() => location.replace(url.href), 300);
  }

  async function toggleTls(button) {
    const https = page.snapshot && page.snapshot.health && page.snapshot.health.scheme === 'https';
    await act(button, async () => {
      const body = expectOk(await api('POST', '/api/tls', { enabled: !https }), 'switch');
      say((body.message || 'Switched') + ' — reconnecting…', 'ok');
      goScheme(body.scheme || (https ? 'http' : 'https'));
    });
  }

  function takeTokenFromFragment() {
    if (!location.hash.startsWith('#token=')) return;
    const token = decodeURIComponent(location.hash.slice('#token='.length));
    if (token) {
      page.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
    }
    history.replaceState(null, '', location.pathname + location.search);
  }

  // ---------------------------------------------------------------------------------------
  // Other actions

  async function recover(button) {
    await act(button, async () => {
      say('Asking the terminals about unknown outcomes…');
      const body = expectOk(await api('POST', '/api/recover'), 'recover');
      say('Recovery: ' + (body.message || describe(body)), body.unknownOutcomes ? 'info' : 'ok');
      refreshSoon();
    });
  }

  async function simulator(button, path, body, done) {
    await act(button, async () => {
      const answer = expectOk(await api('POST', path, body), 'simulator');
      say(done(answer), 'ok');
      refreshSoon();
    });
  }

  function wire() {
    // The token is needed for anything at all: Escape does not dismiss its prompt.
    $('token-dialog').addEventListener('cancel', (event) => event.preventDefault());
    document.querySelectorAll('[data-tcp]').forEach((button) => {
      button.addEventListener('click', () => tcpAction(button.dataset.tcp, button));
    });
    $('tcp-form').addEventListener('submit', (event) => {
      event.preventDefault();
      tcpAction('register', document.querySelector('[data-tcp="register"]'));
    });
    $('pay-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const amount = $('amount').value.trim();
      if (!/^\d{1,9}(\.\d{1,2})?$/.test(amount) || Number(amount) <= 0) {
        invalid('amount', 'Enter an amount such as 10.00 (SAR, at most two decimals).');
        return;
      }
      $('amount').removeAttribute('aria-invalid');
      const toCom = $('pay-target').value === 'com';
      const target = toCom ? 'com' : tcpTarget();
      if (!target) return;
      await act($('purchase'), () => transact(target, 'PURCHASE', { amount }));
    });
    $('cancel').addEventListener('click', (event) => {
      const toCom = $('pay-target').value === 'com';
      const target = toCom ? { com: true } : tcpTarget();
      if (!target) return;
      act(event.currentTarget, async () => {
        const body = expectOk(await api('POST', '/cancelTransaction', target), 'cancel');
        say(describe(body), 'info');
      });
    });
    $('com-form').addEventListener('submit', (event) => {
      event.preventDefault();
      comConnect($('com-port').value, event.submitter || null);
    });
    $('tls-toggle').addEventListener('click', (event) => toggleTls(event.currentTarget));
    $('recover-all').addEventListener('click', (event) => recover(event.currentTarget));

    $('sim-tap').addEventListener('click', (event) => simulator(event.currentTarget, '/simulator/tap', undefined,
      (a) => (a.body.purchaseWasWaiting ? 'Card tapped: the waiting transaction goes on.' : 'Card on the reader for the next transaction.')));
    $('sim-card-tap').addEventListener('click', (event) => {
      const on = event.currentTarget.getAttribute('aria-pressed') !== 'true';
      simulator(event.currentTarget, '/simulator/card-tap', { enabled: on },
        () => (on ? 'Card-tap mode on: purchases wait for “Tap card”.' : 'Card-tap mode off: purchases approve at once.'));
    });
    $('sim-decline').addEventListener('click', (event) => simulator(event.currentTarget, '/simulator/fault',
      { fault: 'decline', code: '116', scope: 'next', count: 1 }, () => 'The next card transaction is declined (116).'));
    $('sim-offline').addEventListener('click', (event) => {
      const offline = event.currentTarget.dataset.on === 'true';
      if (offline) {
        simulator(event.currentTarget, '/simulator/faults/clear', undefined, () => 'The simulator answers again (faults cleared).');
      } else {
        simulator(event.currentTarget, '/simulator/fault', { fault: 'never-answer', scope: 'always' },
          () => 'The simulator is offline: it takes requests and never answers.');
      }
    });
    $('sim-reboot').addEventListener('click', (event) => simulator(event.currentTarget, '/simulator/reboot', undefined,
      () => 'The simulator rebooted: it forgot its registration.'));
    $('sim-clear').addEventListener('click', (event) => simulator(event.currentTarget, '/simulator/faults/clear', undefined,
      () => 'Faults cleared.'));

    const confirmDialog = $('confirm-dialog');
    $('clear-data').addEventListener('click', () => {
      confirmDialog.showModal();
      $('confirm-cancel').focus();
    });
    $('confirm-cancel').addEventListener('click', () => confirmDialog.close());
    $('confirm-ok').addEventListener('click', async (event) => {
      confirmDialog.close();
      await act(event.currentTarget, async () => {
        const body = expectOk(await api('POST', '/clearTerminalData', { confirmClear: true }), 'clear');
        say(body.message || describe(body), body.status === 'Success' ? 'ok' : 'error');
        refreshSoon();
      });
      $('clear-data').focus();
    });
    const register = localStorage.getItem('nami-httpd-register');
    if (register && /^\d{8}$/.test(register)) $('register-no').value = register;
  }

  async function start() {
    takeTokenFromFragment();
    wire();
    setLive('connecting');
    try {
      const answer = await api('GET', '/api/dashboard');
      if (answer.status === 200) render(answer.body);
    } catch (error) {
      setLive('offline', error.message);
    }
    connectEvents();
    window.addEventListener('pagehide', () => {
      page.leaving = true;
      if (page.events) page.events.close();
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
