// DOM helpers. Every value reaches the page as text (text nodes, textContent, attribute
// values): nothing here parses HTML, so data from webhooks cannot become markup.

// h creates an element: h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child…).
// Attributes starting with "on" are event listeners; null/undefined/false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'href' && typeof v === 'string' && !/^(#|\/|https?:)/.test(v)) continue; // no javascript: URLs
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties el and appends children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// table builds a scrollable table: columns are [title, row => cell] pairs.
export function table(columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', {class: 'muted'}, empty);
  return h('div', {class: 'table-wrap'}, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', {scope: 'col'}, title)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(r))))))));
}

export function badge(text, kind) {
  return h('span', {class: 'badge' + (kind ? ' ' + kind : '')}, text);
}

const outcomeKinds = {OK: 'ok', DUPLICATE: 'ok', FAILED: 'bad', REJECTED: 'bad', UNMATCHED: 'warn', RETRYING: 'warn', OWNED: 'ok', ORPHANED: 'warn', MISSING: 'bad'};
const statusKinds = {ACTIVE: 'ok', FAILED: 'bad', PENDING: 'warn', DELETING: 'warn'};

// enumBadge shows an enum value without its prefix (DELIVERY_OUTCOME_FAILED → FAILED).
export function enumBadge(value, prefix) {
  const v = String(value || '').replace(prefix, '') || 'UNSPECIFIED';
  return badge(v, outcomeKinds[v] || statusKinds[v] || '');
}

export function time(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return h('time', {datetime: ts, title: ts}, isNaN(d) ? ts : d.toLocaleString());
}

export function json(v) {
  return JSON.stringify(v, null, 2);
}

export function pre(text, cls) {
  return h('pre', {class: cls || null, tabindex: '0'}, text);
}

// toast shows a short message for a few seconds (announced to screen readers).
export function toast(text, bad = false) {
  const box = document.getElementById('toast');
  const m = h('div', {class: 'msg' + (bad ? ' bad' : '')}, text);
  box.append(m);
  setTimeout(() => m.remove(), bad ? 8000 : 4000);
}

// copyButton copies text to the clipboard.
export function copyButton(text, label = 'Copy') {
  return h('button', {type: 'button', class: 'secondary', onclick: async () => {
    try { await navigator.clipboard.writeText(text); toast('Copied'); } catch { toast('Copy failed: select the text instead', true); }
  }}, label);
}

// field is a labelled control.
export function field(label, control, required = false) {
  return h('label', {}, h('span', {class: required ? 'req' : null}, label), control);
}

export function select(name, options, value) {
  return h('select', {name}, options.map(([v, text]) => h('option', {value: v, selected: v === value ? true : null}, text)));
}

// errorBox shows an error (an API error with its code and field violations).
export function errorBox(err) {
  const text = err && typeof err.text === 'function' ? err.text() : String((err && err.message) || err);
  return h('pre', {class: 'error', role: 'alert'}, text);
}

// busy disables a button while f runs and shows f's error in out (when given).
export async function busy(button, f, out) {
  button.disabled = true;
  try {
    return await f();
  } catch (err) {
    if (out) fill(out, errorBox(err));
    else toast(err && typeof err.text === 'function' ? err.text() : String(err.message || err), true);
    return undefined;
  } finally {
    button.disabled = false;
  }
}
