// Outgoing webhooks: the registrations (header values and signing secrets are write-only:
// only their names and presence are shown) and each one's invocations.
import {call, listAll} from '../api.js';
import {h, fill, table, time, badge} from '../dom.js';

const dur = (d) => d ? `${Math.round(parseFloat(d) * 1000)} ms` : '—';

export async function render(main, {id, params, go}) {
  if (id) return invocations(main, id, params, go);
  const hooks = await listAll('WebhookService/ListWebhooks', {}, 'webhooks');
  fill(main,
    h('h1', {}, 'Outgoing webhooks'),
    table([
      ['Id', (w) => h('a', {href: '#/webhooks/' + encodeURIComponent(w.id), class: 'mono'}, w.id)],
      ['Method and URL', (w) => h('span', {class: 'mono'}, `${w.method} ${w.url}`)],
      ['Encoding', (w) => String(w.payloadEncoding || '').replace('PAYLOAD_ENCODING_', '').toLowerCase()],
      ['Headers', (w) => h('span', {class: 'mono'}, (w.headerNames || []).join(', ') || '—')],
      ['Query params', (w) => h('span', {class: 'mono'}, (w.queryParams || []).join(', ') || '—')],
      ['Signed', (w) => w.hasSigningSecret ? 'yes' : 'no'],
      ['Attempts', (w) => String(w.maxAttempts || 1)],
      ['', (w) => h('a', {href: '#/webhooks/' + encodeURIComponent(w.id)}, 'Invocations')],
    ], hooks, 'No outgoing webhook is registered (RegisterWebhook, or --webhooks FILE).'));
}

async function invocations(main, id, params, go) {
  const w = await call('WebhookService/GetWebhook', {id});
  const errorsOnly = params.get('errors') === '1';
  const page = params.get('page') || '';
  const r = await call('WebhookService/ListInvocations', {webhookId: id, errorsOnly, pageSize: 50, pageToken: page});
  const toggle = h('label', {class: 'check'}, h('input', {type: 'checkbox', checked: errorsOnly,
    onchange: (e) => go('webhooks/' + id, {errors: e.target.checked ? '1' : ''})}), 'Errors only');
  fill(main,
    h('p', {}, h('a', {href: '#/webhooks'}, '← Outgoing webhooks')),
    h('h1', {}, 'Webhook ', h('span', {class: 'mono'}, w.id)),
    h('div', {class: 'card'}, h('dl', {class: 'kv'},
      h('dt', {}, 'Target'), h('dd', {class: 'mono'}, `${w.method} ${w.url}`),
      h('dt', {}, 'Header names'), h('dd', {class: 'mono'}, (w.headerNames || []).join(', ') || '—'),
      h('dt', {}, 'Signing secret'), h('dd', {}, w.hasSigningSecret ? 'set (write-only)' : 'none'))),
    h('h2', {}, 'Invocations'),
    toggle,
    table([
      ['Time', (i) => time(i.time)],
      ['Reference', (i) => h('span', {class: 'mono'}, i.referenceId)],
      ['Status', (i) => i.error ? badge(String(i.status || 'error'), 'bad') : badge(String(i.status), 'ok')],
      ['Attempts', (i) => String(i.attempts)],
      ['Duration', (i) => dur(i.duration)],
      ['Sizes', (i) => `${i.requestSize} → ${i.responseSize} bytes`],
      ['Error', (i) => i.errorMessage ? h('span', {class: 'error-text mono'}, i.errorMessage) : ''],
    ], r.invocations || [], 'No invocation yet.'),
    r.nextPageToken ? h('div', {class: 'pager'}, h('button', {type: 'button', class: 'secondary',
      onclick: () => go('webhooks/' + id, {errors: errorsOnly ? '1' : '', page: r.nextPageToken})}, 'Older →')) : null);
}
