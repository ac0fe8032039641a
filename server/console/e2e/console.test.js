// Browser tests of the console: Debian's chromium, driven by playwright-core (no browser
// download), against a real hookmap binary started here on 127.0.0.1 with auth on and a
// copy of the bundled example-webhook connector whose mapping first fails, then is fixed.
//
//   HOOKMAP_BIN=path/to/hookmap   the binary (default: go build ../../cmd/hookmap here)
//   CHROMIUM=/usr/bin/chromium     the browser
//   SCREENSHOTS=dir                where to save screenshots (default: a temp folder)
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, execFileSync} from 'node:child_process';
import {mkdtempSync, cpSync, readFileSync, writeFileSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, dirname, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const TOKEN = 'e2e-admin-token-0123456789';
const work = mkdtempSync(join(tmpdir(), 'hookmap-e2e-'));
const shots = process.env.SCREENSHOTS ? resolve(process.env.SCREENSHOTS) : join(work, 'screenshots');
mkdirSync(shots, {recursive: true});

// The connector under test: example-webhook, its handle broken until the test fixes it.
const connectors = join(work, 'connectors');
cpSync(join(repo, 'connectors/example-webhook'), join(connectors, 'example-webhook'), {recursive: true});
const handleFile = join(connectors, 'example-webhook/events/message/handle.map.yml');
const goodHandle = readFileSync(handleFile, 'utf8');
const brokenHandle = `# Broken on purpose: the body has "messages", not "items".
events:
  $cel: >-
    data.items.map(m, {"type": "message.created", "record": m})
`;
writeFileSync(handleFile, brokenHandle);

let server; let base; let browser; let serverLog = '';

async function startServer() {
  let bin = process.env.HOOKMAP_BIN;
  if (!bin) {
    bin = join(work, 'hookmap');
    execFileSync('go', ['build', '-o', bin, './server/cmd/hookmap'], {cwd: repo, stdio: 'inherit'});
  }
  server = spawn(bin, ['serve', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--public-url=',
    '--data-dir', 'data', '--connectors', 'connectors', '--admin-token', TOKEN, '--log-format', 'json'],
  {cwd: work, stdio: ['ignore', 'pipe', 'pipe']}); // relative folders: errors name connectors/…
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('hookmap did not start:\n' + serverLog)), 20000);
    const onData = (chunk) => {
      serverLog += chunk;
      for (const line of serverLog.split('\n')) {
        if (!line.includes('"hookmap started"')) continue;
        clearTimeout(timer);
        ok('http://' + JSON.parse(line).http);
        return;
      }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code) => fail(new Error(`hookmap exited with ${code}:\n${serverLog}`)));
  });
}

// api calls the JSON API as the admin.
async function api(method, body) {
  const r = await fetch(`${base}/api/hookmap.v1.${method}`, {
    method: 'POST', headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + TOKEN}, body: JSON.stringify(body),
  });
  const data = await r.json();
  assert.equal(r.status, 200, JSON.stringify(data));
  return data;
}

before(async () => {
  base = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
});

// newPage opens a page that records dialogs, script errors and CSP reports (console errors).
async function newPage(width = 1280, height = 860) {
  const context = await browser.newContext({viewport: {width, height}});
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on('dialog', async (d) => { page.dialogs.push(`${d.type()}: ${d.message()}`); await d.accept(); });
  page.on('pageerror', (e) => page.problems.push('page error: ' + e.message));
  // Script errors and CSP violations; an API call answering an error (the playground's
  // failing mapping) is logged as a failed resource and is expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.problems.push('console: ' + m.text());
  });
  return page;
}

async function signIn(page) {
  await page.goto(base + '/console/');
  // Keyboard only: the token field has focus; Enter submits.
  await page.getByLabel('Admin token or workspace API key').waitFor();
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', {name: 'Deliveries'}).waitFor();
}

// menu is a link of the main menu.
const menu = (page, name) => page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name, exact: true});

async function shot(page, name) {
  await page.evaluate(() => document.getElementById('toast').replaceChildren()); // no passing messages
  await page.screenshot({path: join(shots, name + '.png'), fullPage: false});
}

async function postHook(uri, body, headers = {}) {
  const r = await fetch(uri, {method: 'POST', headers: {'Content-Type': 'application/json', ...headers}, body});
  return {status: r.status, text: await r.text()};
}

test('sign in, subscribe, a failing webhook, fix, playground, replay, live tail', async () => {
  const page = await newPage();
  await page.goto(base + '/console/#/connections');
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  await signIn(page);
  // The token stays in this tab's sessionStorage, never in the URL or localStorage.
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(TOKEN));

  // Create a connection and a subscription through the forms.
  await menu(page, 'Connections').click();
  await page.getByText('New connection').click();
  await page.getByLabel('Connector').selectOption('example-webhook');
  await page.getByLabel('Name').fill('e2e shop');
  await page.getByRole('button', {name: 'Create connection'}).click();
  await page.getByRole('heading', {name: 'e2e shop'}).waitFor();
  await page.getByLabel('channel').fill('general'); // drawn from the event's parametersSchema
  await page.getByRole('button', {name: 'Create subscription'}).click();
  await page.getByText('ACTIVE', {exact: true}).waitFor();
  const uri = await page.locator('td span.mono', {hasText: '/hooks/'}).first().textContent();
  assert.match(uri, /^http:\/\/127\.0\.0\.1:\d+\/hooks\/\w+$/);
  await shot(page, 'connection');

  // A webhook the broken mapping fails on: kept for replay.
  const res = await postHook(uri, JSON.stringify({messages: [{id: 'm1', text: 'hello from e2e'}]}));
  assert.equal(res.status, 500, res.text);

  await menu(page, 'Deliveries').click();
  await page.getByLabel('Outcome').selectOption('FAILED');
  await page.getByRole('button', {name: 'Filter'}).click();
  await page.locator('.badge', {hasText: 'FAILED'}).first().waitFor();
  await shot(page, 'deliveries');
  await page.getByRole('link', {name: /^Details of delivery/}).first().click();
  await page.getByRole('heading', {name: 'Error'}).waitFor();
  const error = await page.locator('pre.error').textContent();
  assert.match(error, /handle\.map\.yml:\d+/);
  assert.ok(await page.getByText('hello from e2e').first().isVisible(), 'the raw body is shown');
  await shot(page, 'delivery-failed');
  const deliveryURL = page.url();

  // In the playground, the kept request fails the same way.
  await page.getByRole('button', {name: 'Open in playground'}).click();
  await page.getByRole('heading', {name: 'Mapping playground'}).waitFor();
  assert.match(await page.locator('#pg-input').inputValue(), /hello from e2e/);
  await page.getByRole('button', {name: 'Run'}).click();
  await page.locator('#pg-output pre.error').waitFor();
  assert.match(await page.locator('#pg-output pre.error').textContent(), /handle\.map\.yml:\d+/);

  // Fix the mapping, reload the connectors from the console.
  writeFileSync(handleFile, goodHandle);
  await menu(page, 'Connectors').click();
  await page.getByRole('button', {name: 'Reload connectors'}).click();
  await page.getByText(/^Reloaded: 1 loaded/).waitFor();
  assert.ok(await page.getByText('No problems.').isVisible());
  await shot(page, 'connectors');

  await page.goBack();
  await page.getByRole('heading', {name: 'Mapping playground'}).waitFor();
  await page.getByRole('button', {name: 'Run'}).click();
  await page.getByRole('heading', {name: 'Output'}).waitFor();
  const output = await page.locator('#pg-output pre').textContent();
  assert.match(output, /"type": "message\.created"/);
  assert.match(output, /"text": "hello from e2e"/);
  await shot(page, 'playground');

  // EvaluateMethod refuses input keys that are not the method's variables: the sample
  // follows the method picked (subscribe has no request, rawBody…).
  await page.locator('#pg-method').selectOption('subscribe');
  const subscribeInput = JSON.parse(await page.locator('#pg-input').inputValue());
  assert.equal(subscribeInput.rawBody, undefined);
  assert.ok('parameters' in subscribeInput);
  await page.getByRole('button', {name: 'Run'}).click();
  await page.locator('#pg-output pre', {hasText: '"state"'}).waitFor();

  // A live tail in another tab of the same browser context (the token is per tab: sign in).
  const tail = await page.context().newPage();
  tail.on('pageerror', (e) => page.problems.push('tail page error: ' + e.message));
  await tail.goto(base + '/console/#/tail');
  await tail.getByLabel('Admin token or workspace API key').waitFor();
  await tail.keyboard.type(TOKEN);
  await tail.keyboard.press('Enter');
  await tail.locator('main[data-tail="live"]').waitFor();

  // Replay the delivery: it now maps, and its event reaches the tail.
  await page.goto(deliveryURL);
  await page.getByRole('button', {name: 'Replay'}).click();
  await page.getByText(/^Replayed: OK, 1 event/).waitFor();
  await page.getByRole('heading', {name: 'Events produced (1)'}).waitFor();
  await tail.locator('.tail-list li', {hasText: 'message.created'}).waitFor();
  assert.ok(await tail.getByText('hello from e2e').isVisible());
  await shot(tail, 'live-tail');

  // Pause holds new events back.
  await tail.getByRole('button', {name: 'Pause'}).click();
  assert.equal((await postHook(uri, JSON.stringify({messages: [{id: 'm2', text: 'second'}]}))).status, 200);
  await tail.getByText(/paused, 1 held back/).waitFor();
  assert.equal(await tail.locator('.tail-list li').count(), 1);
  await tail.getByRole('button', {name: 'Resume'}).click();
  await tail.locator('.tail-list li', {hasText: 'second'}).waitFor();

  assert.deepEqual(page.dialogs, []);
  assert.deepEqual(page.problems, []);
});

test('attacker-controlled bodies and headers render as text', async () => {
  const page = await newPage();
  await signIn(page);
  const conns = await api('ConnectionService/ListConnections', {});
  const subs = await api('SubscriptionService/ListSubscriptions', {connectionId: conns.connections[0].id});
  const uri = subs.subscriptions[0].webhookUri;
  const script = '<script>alert(1)</script>';
  const img = '"><img src=x onerror=alert(2)>';
  // "messages" as a string: the mapping fails, so the request is kept and shown.
  const res = await postHook(uri, JSON.stringify({messages: script + img}), {'X-Title': img, 'X-Note': script,
    Authorization: 'Bearer sender-secret-credential', 'X-Hub-Signature-256': 'sha256=signature-secret'});
  assert.equal(res.status, 500, res.text);

  await page.goto(base + '/console/#/deliveries?outcome=FAILED');
  await page.locator('.badge', {hasText: 'FAILED'}).first().waitFor();
  await page.getByRole('link', {name: /^Details of delivery/}).first().click();
  await page.getByRole('heading', {name: 'Raw body'}).waitFor();
  const body = page.locator('pre', {hasText: '"messages":'});
  assert.ok(await body.isVisible(), 'the raw body is shown');
  assert.ok((await body.textContent()).includes(script + '\\"><img src=x onerror=alert(2)>'), 'the body is shown as text');
  assert.ok(await page.getByText(img, {exact: true}).isVisible(), 'the header is visible as text');
  assert.ok(await page.getByText(script, {exact: true}).isVisible());
  assert.equal(await page.locator('main img, main script').count(), 0, 'no element was created from the payload');
  const text = await page.locator('main').textContent();
  assert.ok(!text.includes('sender-secret-credential') && !text.includes('signature-secret'), 'secret header values are withheld');
  assert.ok(text.includes('[redacted: credential or signature]'));
  await shot(page, 'delivery-xss');

  // The narrow (phone) layout of the same page and of the list.
  await page.setViewportSize({width: 390, height: 844});
  await shot(page, 'delivery-390');
  await page.goto(base + '/console/#/deliveries');
  await page.locator('.badge').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
  await shot(page, 'deliveries-390');

  assert.deepEqual(page.dialogs, [], 'no script of the payload ran');
  assert.deepEqual(page.problems, []);
});

test('keyboard navigation, outgoing webhooks and reconcile', async () => {
  await api('WebhookService/RegisterWebhook', {webhook: {id: 'billing-sync', url: 'http://127.0.0.1:9/sync', method: 'POST',
    headers: {'X-Secret': 'registered-header-secret'}, signingSecret: 'whsec_c2lnbmluZy1zZWNyZXQtc2lnbmluZy1zZWNyZXQ=', maxAttempts: 1}});
  // Outbound calls to loopback are refused by default: the invocation records an error.
  const tr = await api('WebhookService/TriggerWebhook', {webhookId: 'billing-sync', data: {n: 1}});
  assert.equal(tr.error, true);

  const page = await newPage();
  await signIn(page);
  await page.reload(); // signed in (this tab's sessionStorage); focus starts at the top
  await page.getByRole('heading', {name: 'Deliveries'}).waitFor();
  // The skip link is the first stop; then the menu, each link reachable with Tab and Enter.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  let found = false;
  for (let i = 0; i < 12 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement.textContent === 'Outgoing webhooks');
  }
  assert.ok(found, 'the menu is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', {name: 'Outgoing webhooks'}).waitFor();
  assert.ok(await page.getByText('billing-sync').first().isVisible());
  let text = await page.locator('main').textContent();
  assert.ok(!text.includes('registered-header-secret') && !text.includes('whsec_'), 'registered secrets never reach the page');
  await page.getByRole('link', {name: 'Invocations'}).click();
  await page.locator('.badge.bad').first().waitFor();
  text = await page.locator('main').textContent();
  assert.ok(!text.includes('registered-header-secret'));
  await shot(page, 'webhooks');

  await menu(page, 'Reconcile').click();
  await page.getByRole('heading', {name: 'Reconcile'}).waitFor();
  assert.ok(await page.getByRole('button', {name: 'Dry run'}).isVisible());
  assert.ok(await page.getByRole('button', {name: 'Delete orphans'}).isDisabled(), 'no deletion before a dry run');

  // Sign out forgets the token.
  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  assert.deepEqual(page.problems, []);
});
