// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// against the running nami-httpd with its embedded simulator. Started by run.sh, which passes:
//   DASHBOARD_URL   the daemon with --simulator (http://127.0.0.1:PORT)
//   SIM_ADDR        the embedded simulator's TCP address (127.0.0.1:PORT)
//   TOKEN_URL       a second daemon that requires a bearer token (optional)
//   DASHBOARD_TOKEN its token
//   SCREENSHOTS     where the screenshots go (target/dashboard-screenshots)
//   POS_ORIGIN_PORT a free port of 127.0.0.1 whose origin the main daemon allows (--allowed-origin)
//
// The steps build on each other (register, then purchase, ...): after a failure the rest are
// skipped. Prints `N passed, N failed` last; exits 1 on a failure.

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL_MAIN = required('DASHBOARD_URL');
const SIM_ADDR = required('SIM_ADDR');
const TOKEN_URL = process.env.TOKEN_URL || '';
const TOKEN = process.env.DASHBOARD_TOKEN || '';
const SHOTS = process.env.SCREENSHOTS || 'target/dashboard-screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const POS_ORIGIN_PORT = Number(required('POS_ORIGIN_PORT'));
// A name the browser resolves to 127.0.0.1, as a DNS rebinding attacker's would.
const REBOUND = 'rebound.test';
const WAIT = 10_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (run.sh sets it)`);
    process.exit(2);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// A small runner

let passed = 0;
let failed = 0;
let skipped = 0;
let stop = false;

async function test(name, body) {
  if (stop) {
    skipped += 1;
    console.log(`skip - ${name}`);
    return;
  }
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    stop = true;
    console.log(`not ok - ${name} (${Date.now() - started} ms)`);
    console.log(String(error && error.stack ? error.stack : error).replace(/^/gm, '    '));
    await shot(`failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(() => {});
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// The browser

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // As root in a container; no network beyond loopback here: nothing in the background.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`,
  ],
});
// The HTTPS switch serves a self-signed certificate: accepted here, its fingerprint is compared
// with the daemon's below.
const context = await browser.newContext({ viewport: DESKTOP, ignoreHTTPSErrors: true });
const page = await context.newPage();
const problems = [];
page.on('console', (message) => {
  if (message.type() === 'error') problems.push(`console: ${message.text()}`);
});
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('requestfailed', (request) => {
  // The event stream and requests cut by the scheme switch are expected to end.
  if (!/\/api\/events/.test(request.url()) && !/ERR_ABORTED/.test(request.failure()?.errorText || '')) {
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  }
});

async function shot(name, target = page) {
  await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function text(selector, target = page) {
  return (await target.locator(selector).first().textContent())?.trim() ?? '';
}

async function waitText(selector, expected, target = page, timeout = WAIT) {
  await target.waitForFunction(
    ([s, e]) => {
      const node = document.querySelector(s);
      return node && (e instanceof RegExp ? e.test(node.textContent) : node.textContent.includes(e));
    },
    [selector, expected],
    { timeout },
  );
}

async function liveState(target = page) {
  return target.locator('#live').getAttribute('data-state');
}

/** Fills the TCP form with the embedded simulator's address. */
async function fillTerminal() {
  const [ip, port] = [SIM_ADDR.slice(0, SIM_ADDR.lastIndexOf(':')), SIM_ADDR.slice(SIM_ADDR.lastIndexOf(':') + 1)];
  await page.getByLabel('IP address').fill(ip);
  await page.getByLabel('Port', { exact: true }).fill(port);
}

/** Clicks Purchase with `amount`; returns the result's ECR reference and kind. */
async function purchase(amount) {
  const before = await page.locator('#result').getAttribute('data-ecr');
  await page.getByLabel('Amount (SAR)').fill(amount);
  await page.getByRole('button', { name: 'Purchase', exact: true }).click();
  await page.waitForFunction(
    (b) => {
      const r = document.querySelector('#result');
      return r && !r.hidden && r.dataset.txn === 'PURCHASE' && r.dataset.ecr !== b;
    },
    before,
    { timeout: WAIT },
  );
  return {
    ecr: await page.locator('#result').getAttribute('data-ecr'),
    kind: await page.locator('#result').getAttribute('data-kind'),
  };
}

async function journalRow(ecr, state, timeout = 5_000) {
  const row = page.locator(`#journal-table tr[data-ecr="${ecr}"]`);
  await row.waitFor({ state: 'visible', timeout });
  if (state) {
    await page.waitForFunction(
      ([e, s]) => document.querySelector(`#journal-table tr[data-ecr="${e}"]`)?.dataset.state === s,
      [ecr, state],
      { timeout },
    );
  }
  return row;
}

/** A web page of another origin: serves an empty HTML page on 127.0.0.1:`port` (0: any). */
async function otherOrigin(port) {
  const server = createServer((_, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>another site</title><p>another site</p>');
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** What a refused request must leave as it was: the simulator's frame count, the registration. */
async function terminalState() {
  const [ip, port] = [SIM_ADDR.slice(0, SIM_ADDR.lastIndexOf(':')), SIM_ADDR.slice(SIM_ADDR.lastIndexOf(':') + 1)];
  const simulator = await (await fetch(URL_MAIN + '/simulator/state')).json();
  const registration = await (await fetch(`${URL_MAIN}/registrationStatus?ip=${ip}&port=${port}`)).json();
  return { frames: simulator.requestsReceived, registered: registration.registered };
}

// ---------------------------------------------------------------------------------------------
// The steps

const started = Date.now();
let purchaseEcr = '';

await test('the page loads from the daemon with a self-only CSP and shows the service health', async () => {
  const response = await page.goto(URL_MAIN + '/');
  check(response.status() === 200, `status ${response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp), `CSP: ${csp}`);
  await waitText('#h-status', 'UP');
  check((await text('#h-scheme')) === 'HTTP', `scheme ${await text('#h-scheme')}`);
  check(/\d+ MB of \d+ MB/.test(await text('#h-memory')), 'memory shown');
  check((await text('#h-version')).length > 0, 'version shown');
  await page.waitForFunction(() => document.querySelector('#live')?.dataset.state === 'live', null, { timeout: WAIT });
  // The simulator's section is there, and its address is in the form already.
  await page.locator('#simulator').waitFor({ state: 'visible' });
  check((await text('#s-listen')) === SIM_ADDR, `simulator ${await text('#s-listen')}`);
  // Every form control has a label, every button a name.
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select')]
    .filter((i) => !i.labels || i.labels.length === 0).map((i) => i.id));
  check(unlabelled.length === 0, `unlabelled: ${unlabelled}`);
  const nameless = await page.evaluate(() => [...document.querySelectorAll('button')]
    .filter((b) => !(b.getAttribute('aria-label') || b.textContent.trim())).length);
  check(nameless === 0, `${nameless} buttons without a name`);
  await shot('1-desktop-loaded');
});

await test('register the simulator terminal through the page', async () => {
  await fillTerminal();
  await page.locator('#tcp-form').getByRole('button', { name: 'Register', exact: true }).click();
  await page.waitForFunction(() => document.querySelector('#result')?.dataset.txn === 'REGISTER', null, { timeout: WAIT });
  const result = await text('#result h3');
  check(/Registered/.test(result), `result: ${result}`);
  // The terminals table follows live: connected and registered with the simulator's ID.
  const row = page.locator(`#terminal-table tr[data-terminal="${SIM_ADDR}"]`);
  await row.waitFor({ timeout: WAIT });
  await page.waitForFunction(
    (key) => /Registered/.test(document.querySelector(`#terminal-table tr[data-terminal="${key}"]`)?.textContent || ''),
    SIM_ADDR,
    { timeout: WAIT },
  );
  check(/8184000200000077/.test(await row.textContent()), 'terminal ID shown');
  await shot('2-desktop-before-purchase');
});

await test('a purchase of 10.00 through the page is approved and its journal row appears without a reload', async () => {
  await page.evaluate(() => { window.__sameDocument = true; });
  const { ecr, kind } = await purchase('10.00');
  check(kind === 'ok', `result ${kind}: ${await text('#result')}`);
  check(/^\d{14}$/.test(ecr), `ECR reference ${ecr}`);
  purchaseEcr = ecr;
  const row = await journalRow(ecr, 'approved');
  const cells = await row.textContent();
  check(/PURCHASE/.test(cells) && /SAR 10\.00/.test(cells) && /Approved/.test(cells), `row: ${cells}`);
  check(await page.evaluate(() => window.__sameDocument === true), 'the page was reloaded');
  await shot('3-desktop-after-purchase');
});

await test('a purchase made by another client shows up live (server-sent events)', async () => {
  const next = await (await fetch(URL_MAIN + '/nextEcrReference', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ cashRegisterNo: '87654321' }),
  })).json();
  const [ip, port] = [SIM_ADDR.slice(0, SIM_ADDR.lastIndexOf(':')), Number(SIM_ADDR.slice(SIM_ADDR.lastIndexOf(':') + 1))];
  const answer = await (await fetch(URL_MAIN + '/performTransactionTCPIP', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      tcpipcomData: { ip, port },
      paymentRequest: { txnType: 'PURCHASE', amount: '2.00', ecrReferenceNo: next.ecrReferenceNo },
    }),
  })).json();
  check(answer.approved === true, `purchase: ${JSON.stringify(answer)}`);
  const t0 = Date.now();
  await journalRow(next.ecrReferenceNo, 'approved', 3_000);
  console.log(`    the row appeared ${Date.now() - t0} ms after the API answered`);
  // The terminal's last event is shown too.
  await waitText(`#terminal-table tr[data-terminal="${SIM_ADDR}"]`, 'Answered 000');
});

await test('a page of another origin cannot drive the terminal: its no-cors POSTs reach nothing', async () => {
  const before = await terminalState();
  check(before.registered === true, `registered first: ${JSON.stringify(before)}`);
  const evil = await otherOrigin(0);
  const other = await context.newPage();
  try {
    await other.goto(evil.url + '/');
    const [ip, port] = [SIM_ADDR.slice(0, SIM_ADDR.lastIndexOf(':')), Number(SIM_ADDR.slice(SIM_ADDR.lastIndexOf(':') + 1))];
    // What any web page can send: "simple" requests, no preflight, the answer unreadable.
    const sent = await other.evaluate(async ([base, tcp]) => {
      // The purchase first: after a clear it would stop at REGISTER_REQUIRED, before the terminal.
      const targets = [
        ['/performTransactionTCPIP', { tcpipcomData: tcp, paymentRequest: { txnType: 'PURCHASE', amount: '99.00', ecrReferenceNo: '87654321000099' } }],
        ['/clearTerminalData', { confirmClear: true }],
      ];
      const results = [];
      for (const [path, body] of targets) {
        const response = await fetch(base + path, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body) });
        results.push(response.type);
      }
      // And what it cannot read: a CORS request's answer.
      try {
        await (await fetch(base + '/transactions')).json();
        results.push('read');
      } catch {
        results.push('unreadable');
      }
      return results;
    }, [URL_MAIN, { ip, port }]);
    check(JSON.stringify(sent) === '["opaque","opaque","unreadable"]', `sent: ${sent}`);
    const afterFetches = await terminalState();
    check(
      JSON.stringify(afterFetches) === JSON.stringify(before),
      `before ${JSON.stringify(before)}, after the fetches ${JSON.stringify(afterFetches)}`,
    );
    // A form posted to the daemon (text/plain, a JSON body): the browser shows the refusal.
    const posted = other.waitForNavigation({ timeout: WAIT });
    await other.evaluate((base) => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.enctype = 'text/plain';
      form.action = base + '/clearTerminalData';
      const input = document.createElement('input');
      input.name = '{"confirmClear": true, "pad": "';
      input.value = '"}';
      form.append(input);
      document.body.append(form);
      form.submit();
    }, URL_MAIN);
    const refused = await posted;
    check(refused.status() === 403, `form post: ${refused.status()}`);
    check(/FORBIDDEN/.test(await other.textContent('body')), 'the refusal is the JSON error');
  } finally {
    await other.close();
    evil.server.close();
  }
  const after = await terminalState();
  check(JSON.stringify(after) === JSON.stringify(before), `before ${JSON.stringify(before)}, after the form ${JSON.stringify(after)}`);
});

await test('DNS rebinding: a page on a name that points at 127.0.0.1 is refused', async () => {
  const other = await context.newPage();
  try {
    const response = await other.goto(`http://${REBOUND}:${new URL(URL_MAIN).port}/transactions`);
    check(response.status() === 403, `status ${response.status()}`);
    check(/allowed_hosts/.test(await other.textContent('body')), 'the answer says what to do');
  } finally {
    await other.close();
  }
});

await test('a page of an allowed origin (--allowed-origin) calls the API with CORS, preflight included', async () => {
  const pos = await otherOrigin(POS_ORIGIN_PORT);
  const other = await context.newPage();
  try {
    await other.goto(pos.url + '/');
    const answer = await other.evaluate(async (base) => {
      const response = await fetch(base + '/nextEcrReference', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cashRegisterNo: '11223344' }),
      });
      return response.json();
    }, URL_MAIN);
    check(/^11223344\d{6}$/.test(answer.ecrReferenceNo || ''), `answer: ${JSON.stringify(answer)}`);
  } finally {
    await other.close();
    pos.server.close();
  }
});

await test('simulator: "Decline next" makes the next purchase decline with 116', async () => {
  await page.getByRole('button', { name: 'Decline next' }).click();
  await waitText('#s-faults', 'decline 116');
  const { ecr, kind } = await purchase('12.00');
  check(kind === 'bad', `result ${kind}`);
  check(/116/.test(await text('#result')), 'response code 116 shown');
  const row = await journalRow(ecr, 'declined');
  check(/Declined/.test(await row.textContent()), 'declined row');
  await waitText('#s-faults', 'None');
});

await test('simulator offline: the purchase is an unknown outcome, highlighted, and "Recover" resolves it', async () => {
  await page.getByRole('button', { name: 'Go offline' }).click();
  await page.getByRole('button', { name: 'Go online' }).waitFor({ timeout: WAIT });
  // The daemon runs with a 4 s card-present timeout (run.sh): the purchase times out.
  const { ecr, kind } = await purchase('13.00');
  check(kind === 'unknown', `result ${kind}: ${await text('#result')}`);
  const row = await journalRow(ecr, 'unknown');
  check(/Unknown outcome/.test(await row.textContent()), 'the row says so');
  check(await row.evaluate((r) => r.classList.contains('unknown')), 'the row is highlighted');
  await page.getByRole('button', { name: 'Recover unknown outcomes' }).waitFor({ timeout: WAIT });
  // Still offline, recovery's DUPLICATE goes unanswered too (run.sh: a 3 s settlement timeout):
  // after one such attempt (run.sh: --recovery-attention-after 1) the health says a person should
  // look at the terminal, and the row stays an unknown outcome.
  await row.getByRole('button', { name: `Recover ${ecr}` }).click();
  await waitText('#h-unknown', /^1 \(1 need attention: recovery has not settled them\)$/);
  // The page says so when the DUPLICATE's 3 s are over; only then is the terminal free again.
  await waitText('#status', 'Recovery:');
  check((await row.getAttribute('data-state')) === 'unknown', 'still unknown after an unanswered DUPLICATE');
  await shot('4-desktop-unknown-outcome');
  await page.getByRole('button', { name: 'Go online' }).click();
  await page.getByRole('button', { name: 'Go offline' }).waitFor({ timeout: WAIT });
  // The simulator carried the purchase out (it only never answered): DUPLICATE finds it approved.
  await row.getByRole('button', { name: `Recover ${ecr}` }).click();
  await journalRow(ecr, 'approved', WAIT);
  await waitText('#status', 'Recovery');
  await waitText('#h-unknown', /^0$/);
});

await test('phone size: one column, no sideways scrolling, screenshots', async () => {
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(-5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${e.textContent.slice(0, 40)}`));
  check(overflow <= 1, `the page is ${overflow}px wider than the phone: ${wide.join(' | ')}`);
  const [terminals, health] = await Promise.all(['#terminals', '#health'].map((s) => page.locator(s).boundingBox()));
  check(Math.abs(terminals.x - health.x) < 2, 'sections stacked in one column');
  await shot('5-phone-after-purchase');
  await page.setViewportSize(DESKTOP);
});

await test('a terminal that cannot be reached: the page says so and lists no connection for it', async () => {
  // A port where nothing listens (bound, then freed).
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const key = `127.0.0.1:${port}`;
  await page.getByLabel('IP address').fill('127.0.0.1');
  await page.getByLabel('Port', { exact: true }).fill(String(port));
  await page.locator('#tcp-form').getByRole('button', { name: 'Connect', exact: true }).click();
  await waitText('#status', `Could not reach ${key}`);
  check(/not listed/.test(await text('#status')), `message: ${await text('#status')}`);
  // After the page's refresh: the simulator's row still there, none for the unreachable target.
  await page.waitForTimeout(1500);
  await page.locator(`#terminal-table tr[data-terminal="${SIM_ADDR}"]`).waitFor({ timeout: WAIT });
  check(await page.locator(`#terminal-table tr[data-terminal="${key}"]`).count() === 0, `a row for ${key}`);
  const connections = await (await fetch(URL_MAIN + '/getExistingConnections')).json();
  check(!(key in connections), `listed: ${JSON.stringify(connections)}`);
  await fillTerminal();
});

await test('"Clear terminal data" asks first, then clears the registration', async () => {
  await page.getByRole('button', { name: 'Clear terminal data…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Clear terminal data?' });
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByRole('button', { name: 'Keep the data' }).click();
  await dialog.waitFor({ state: 'hidden' });
  const row = `#terminal-table tr[data-terminal="${SIM_ADDR}"]`;
  check(/Registered/.test(await text(row)) && !/Not registered/.test(await text(row)), 'still registered');
  await page.getByRole('button', { name: 'Clear terminal data…' }).click();
  await dialog.getByRole('button', { name: 'Clear terminal data' }).click();
  await waitText(row, 'Not registered');
});

await test('"Switch to HTTPS" reloads the page over https on the same port, live again', async () => {
  const port = new URL(URL_MAIN).port;
  await page.getByRole('button', { name: 'Switch to HTTPS' }).click();
  await page.waitForURL((url) => url.protocol === 'https:' && url.port === port, { timeout: WAIT });
  await waitText('#h-scheme', 'HTTPS');
  await page.waitForFunction(() => document.querySelector('#live')?.dataset.state === 'live', null, { timeout: WAIT });
  // The fingerprint shown is the certificate's the daemon reports.
  const tls = await page.evaluate(async () => (await fetch('/api/tls')).json());
  check(tls.enabled === true && tls.scheme === 'https', JSON.stringify(tls));
  check((await text('#h-fingerprint')) === tls.tlsFingerprintSha256, 'fingerprint shown');
  check(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(tls.tlsFingerprintSha256), 'a SHA-256 fingerprint');
  // The journal is still there, and the button offers the way back.
  await journalRow(purchaseEcr, 'approved');
  await page.getByRole('button', { name: 'Switch to HTTP' }).waitFor();
  await shot('6-desktop-https');
  await page.setViewportSize(PHONE);
  await shot('7-phone-https');
  await page.setViewportSize(DESKTOP);
});

await test('no console errors, page errors or CSP violations along the way', async () => {
  check(problems.length === 0, problems.join('\n'));
});

if (TOKEN_URL) {
  await test('with a token: the page asks for it, refuses a wrong one, and goes live with the right one', async () => {
    const other = await context.newPage();
    await other.goto(TOKEN_URL + '/');
    const dialog = other.getByRole('dialog', { name: 'Access token' });
    await dialog.waitFor({ state: 'visible', timeout: WAIT });
    await other.getByLabel('Token', { exact: true }).fill('not-the-token');
    await other.getByRole('button', { name: 'Continue' }).click();
    await other.locator('#token-error').waitFor({ state: 'visible', timeout: WAIT });
    await other.getByLabel('Token', { exact: true }).fill(TOKEN);
    await other.getByRole('button', { name: 'Continue' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: WAIT });
    await waitText('#h-auth', 'Bearer token', other);
    await other.waitForFunction(() => document.querySelector('#live')?.dataset.state === 'live', null, { timeout: WAIT });
    await shot('8-desktop-token', other);
    await other.close();
  });
}

await browser.close();
console.log(`screenshots in ${SHOTS}; ${((Date.now() - started) / 1000).toFixed(1)} s in the browser`);
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 ? 1 : 0);
