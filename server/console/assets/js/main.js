// The console's shell: configuration, sign-in, and a hash router (#/page/id?query) that
// renders one page at a time into <main>.
import {call, session, setUnauthenticatedHandler, ApiError} from './api.js';
import {h, fill, toast} from './dom.js';
import * as connectors from './pages/connectors.js';
import * as connections from './pages/connections.js';
import * as deliveries from './pages/deliveries.js';
import * as tail from './pages/tail.js';
import * as playground from './pages/playground.js';
import * as webhooks from './pages/webhooks.js';
import * as reconcile from './pages/reconcile.js';

const pages = {connectors, connections, deliveries, tail, playground, webhooks, reconcile};
const main = document.getElementById('main');
let config = {authRequired: true};
let cleanup = null;
let firstRoute = true;

// route parses location.hash: #/deliveries/ID?outcome=FAILED → {page, id, params}.
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const [page = '', ...rest] = path.split('/').map(decodeURIComponent);
  return {page: page || 'deliveries', id: rest.join('/'), params: new URLSearchParams(query)};
}

// go navigates to a page with params (an object; empty values dropped).
export function go(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined));
  const s = q.toString();
  location.hash = '#/' + path + (s ? '?' + s : '');
}

function signedIn() {
  return !config.authRequired || !!session.token();
}

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const {page, id, params} = parseHash();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!signedIn()) { signIn(); return; }
  const mod = pages[page];
  if (!mod) { fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No page ', h('code', {}, page), '.')); return; }
  fill(main, h('p', {class: 'muted'}, 'Loading…'));
  try {
    cleanup = (await mod.render(main, {id, params, go})) || null;
  } catch (err) {
    showError(main, err);
  }
  // After a navigation, keyboard and screen-reader users continue in the new content (not
  // on first load, where Tab starts with the skip link and the menu).
  if (!firstRoute) main.focus({preventScroll: true});
  firstRoute = false;
}

// showError renders a page that failed to load.
export function showError(el, err) {
  fill(el, h('h1', {}, 'Something went wrong'), h('pre', {class: 'error'}, err instanceof ApiError ? err.text() : String(err.message || err)));
}

function signIn(message) {
  const token = h('input', {type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true, spellcheck: 'false'});
  const ws = h('input', {type: 'text', name: 'workspace', id: 'workspace', autocomplete: 'off', placeholder: 'default'});
  const remember = h('input', {type: 'checkbox', name: 'remember', id: 'remember'});
  const err = h('p', {class: 'error-text', role: 'alert'}, message || '');
  const form = h('form', {onsubmit: async (e) => {
    e.preventDefault();
    session.save(token.value.trim(), ws.value.trim(), remember.checked);
    try {
      await call('ConnectorService/ListConnectors', {});
      updateWho();
      route();
    } catch (e2) {
      session.clear();
      fill(err, e2 instanceof ApiError ? e2.message : String(e2));
      token.focus();
    }
  }},
  h('label', {for: 'token'}, 'Admin token or workspace API key', token),
  h('label', {for: 'workspace'}, 'Workspace (admin token only; default if empty)', ws),
  h('label', {class: 'check', for: 'remember'}, remember, 'Remember on this browser (otherwise only this tab, until it closes)'),
  err,
  h('button', {type: 'submit'}, 'Sign in'));
  fill(main, h('div', {class: 'card signin'}, h('h1', {}, 'Sign in'),
    h('p', {class: 'muted'}, 'The token is sent only in the Authorization header of API calls.'), form));
  token.focus();
}

function updateWho() {
  const mode = document.getElementById('mode');
  const out = document.getElementById('signout');
  if (!config.authRequired) {
    fill(mode, 'dev mode: no sign-in');
    out.hidden = true;
  } else if (session.token()) {
    fill(mode, 'signed in' + (session.workspace() ? ` · workspace ${session.workspace()}` : ''));
    out.hidden = false;
  } else {
    fill(mode, '');
    out.hidden = true;
  }
}

async function boot() {
  try {
    const r = await fetch('config.json', {credentials: 'omit'});
    config = await r.json();
  } catch {
    toast('Cannot read the console configuration', true);
  }
  setUnauthenticatedHandler(() => {
    if (!config.authRequired) return;
    session.clear();
    updateWho();
    signIn('Your token was refused: sign in again.');
  });
  document.getElementById('signout').addEventListener('click', () => {
    session.clear();
    updateWho();
    route();
  });
  window.addEventListener('hashchange', route);
  updateWho();
  route();
}

boot();
