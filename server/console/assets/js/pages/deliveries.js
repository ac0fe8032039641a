// Deliveries: received requests, newest first, filtered by subscription, global webhook,
// outcome and time, a page at a time; a delivery's detail (headers, raw body, error with
// its file:line, the events it produced) with Replay and "open in playground".
import {call} from '../api.js';
import {h, fill, table, time, enumBadge, busy, toast, field, select, json, pre} from '../dom.js';

const OUTCOMES = ['OK', 'FAILED', 'REJECTED', 'UNMATCHED', 'DUPLICATE'];

// localInput turns an RFC 3339 time into a datetime-local value and back.
const toLocal = (ts) => { if (!ts) return ''; const d = new Date(ts); return isNaN(d) ? '' : new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
const fromLocal = (v) => v ? new Date(v).toISOString() : '';

export async function render(main, {id, params, go}) {
  if (id) return detail(main, id, go);
  const f = {
    subscription: params.get('subscription') || '', gw: params.get('gw') || '', outcome: params.get('outcome') || '',
    start: params.get('start') || '', end: params.get('end') || '', page: params.get('page') || '', prev: params.get('prev') || '',
  };
  const req = {pageSize: 50, pageToken: f.page, subscriptionId: f.subscription, globalWebhookId: f.gw};
  if (f.outcome) req.outcome = 'DELIVERY_OUTCOME_' + f.outcome;
  if (f.start) req.startTime = f.start;
  if (f.end) req.endTime = f.end;
  const r = await call('EventService/ListDeliveries', req);

  const sub = h('input', {type: 'text', name: 'subscription', value: f.subscription, class: 'mono', size: 28});
  const gw = h('input', {type: 'text', name: 'gw', value: f.gw, class: 'mono', size: 28});
  const outcome = select('outcome', [['', 'any'], ...OUTCOMES.map((o) => [o, o])], f.outcome);
  const start = h('input', {type: 'datetime-local', name: 'start', value: toLocal(f.start)});
  const end = h('input', {type: 'datetime-local', name: 'end', value: toLocal(f.end)});
  const filters = h('form', {class: 'card', onsubmit: (e) => {
    e.preventDefault();
    go('deliveries', {subscription: sub.value.trim(), gw: gw.value.trim(), outcome: outcome.value, start: fromLocal(start.value), end: fromLocal(end.value)});
  }}, h('div', {class: 'row'},
    field('Subscription id', sub), field('Global webhook id', gw), field('Outcome', outcome),
    field('Received from', start), field('Received before', end),
    h('button', {type: 'submit'}, 'Filter'),
    h('button', {type: 'button', class: 'secondary', onclick: () => go('deliveries')}, 'Clear')));

  const base = {subscription: f.subscription, gw: f.gw, outcome: f.outcome, start: f.start, end: f.end};
  const stack = f.prev ? f.prev.split(',') : [];
  const pager = h('div', {class: 'pager'},
    f.page ? h('button', {type: 'button', class: 'secondary', onclick: () => {
      const back = stack.slice(0, -1);
      go('deliveries', {...base, page: stack.length ? stack[stack.length - 1] : '', prev: back.join(',')});
    }}, '← Newer') : null,
    r.nextPageToken ? h('button', {type: 'button', class: 'secondary', onclick: () => {
      go('deliveries', {...base, page: r.nextPageToken, prev: [...stack, f.page].join(',')});
    }}, 'Older →') : null,
    h('span', {class: 'muted'}, `${(r.deliveries || []).length} shown, 50 a page`));

  fill(main,
    h('h1', {}, 'Deliveries'),
    filters,
    table([
      ['Received', (d) => h('a', {href: '#/deliveries/' + encodeURIComponent(d.id)}, time(d.receiveTime))],
      ['Outcome', (d) => [enumBadge(d.outcome, 'DELIVERY_OUTCOME_'), d.fetch ? [' fetch ', enumBadge(d.fetch.status, 'FETCH_STATUS_')] : null]],
      ['Status', (d) => String(d.statusCode)],
      ['Events', (d) => String(d.eventCount)],
      ['Subscription / global webhook', (d) => h('span', {class: 'mono'}, d.subscriptionId || d.globalWebhookId)],
      ['Error', (d) => d.error ? h('span', {class: 'error-text mono'}, d.error.length > 160 ? d.error.slice(0, 160) + '…' : d.error) : ''],
      ['', (d) => h('a', {href: '#/deliveries/' + encodeURIComponent(d.id), 'aria-label': 'Details of delivery ' + d.id}, 'Details')],
    ], r.deliveries || [], 'No delivery matches.'),
    pager);
}

// bodyText decodes a base64 body as UTF-8 text (binary bytes show as U+FFFD).
function bodyText(b64) {
  const bin = atob(b64 || '');
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', {fatal: false}).decode(bytes);
}

// sample builds the handle method's input from a kept request (what the receiver gives it).
export function sampleFromRequest(req) {
  const headers = {};
  for (const x of req.headers || []) if (!x.redacted) headers[x.name] = (x.values || []).join(', ');
  const rawBody = bodyText(req.body);
  let data = rawBody;
  try { data = JSON.parse(rawBody); } catch { /* not JSON: the string */ }
  const query = Object.fromEntries(new URLSearchParams(req.query || ''));
  return {method: req.method, query, headers, data, body: data, rawBody};
}

async function detail(main, id, go) {
  const d = await call('EventService/GetDelivery', {id});
  const out = h('div', {});
  const replay = h('button', {type: 'button', disabled: !d.replayable, onclick: () => busy(replay, async () => {
    const res = await call('EventService/ReplayDelivery', {id});
    toast(`Replayed: ${res.outcome.replace('DELIVERY_OUTCOME_', '')}, ${res.eventCount} event(s)`, res.outcome !== 'DELIVERY_OUTCOME_OK');
    await detail(main, id, go);
  }, out)}, 'Replay');
  const toPlayground = h('button', {type: 'button', class: 'secondary', disabled: !d.request, onclick: () => busy(toPlayground, async () => {
    let target = {};
    if (d.subscriptionId) {
      const s = await call('SubscriptionService/GetSubscription', {id: d.subscriptionId});
      target = {connector: s.connectorKey, event: s.eventKey, subscription: s.id};
    }
    sessionStorage.setItem('hookmap.playground.sample', JSON.stringify(sampleFromRequest(d.request)));
    go('playground', {...target, from: d.id});
  }, out)}, 'Open in playground');

  const req = d.request;
  fill(main,
    h('p', {}, h('a', {href: '#/deliveries'}, '← Deliveries')),
    h('h1', {}, 'Delivery ', h('span', {class: 'mono'}, d.id)),
    h('div', {class: 'card'},
      h('dl', {class: 'kv'},
        h('dt', {}, 'Outcome'), h('dd', {}, enumBadge(d.outcome, 'DELIVERY_OUTCOME_'), ` HTTP ${d.statusCode}`),
        h('dt', {}, 'Received'), h('dd', {}, time(d.receiveTime)),
        h('dt', {}, d.subscriptionId ? 'Subscription' : 'Global webhook'), h('dd', {class: 'mono'},
          d.subscriptionId ? h('a', {href: `#/deliveries?subscription=${encodeURIComponent(d.subscriptionId)}`}, d.subscriptionId) : d.globalWebhookId),
        h('dt', {}, 'Events'), h('dd', {}, String(d.eventCount)),
        // The fetch the notification asked for (an event with a fetch method).
        d.fetch ? [h('dt', {}, 'Fetch'), h('dd', {}, enumBadge(d.fetch.status, 'FETCH_STATUS_'), ` ${d.fetch.attempts || 0} failed attempt(s)`)] : null,
        h('dt', {}, 'Request size'), h('dd', {}, `${d.requestSize} bytes`),
        h('dt', {}, 'Replays'), h('dd', {}, String(d.replayCount || 0)),
        (d.selectors || []).length ? [h('dt', {}, 'Selectors'), h('dd', {class: 'mono'}, d.selectors.join(', '))] : null),
      h('div', {class: 'actions'}, replay, toPlayground),
      d.replayable ? null : h('p', {class: 'muted'}, 'Only failed deliveries keep their request (or a given-up fetch), so only they can be replayed.'),
      out),
    d.error ? [h('h2', {}, 'Error'), pre(d.error, 'error')] : null,
    h('h2', {}, 'Request'),
    req ? [
      h('p', {class: 'mono'}, `${req.method} ${req.path}${req.query ? '?' + req.query : ''}`),
      h('h3', {}, 'Headers'),
      table([
        ['Name', (x) => h('span', {class: 'mono'}, x.name)],
        ['Value', (x) => x.redacted ? h('span', {class: 'muted'}, '[redacted: credential or signature]') : h('span', {class: 'mono'}, (x.values || []).join(', '))],
      ], req.headers || [], 'No headers.'),
      h('h3', {}, 'Raw body'),
      pre(bodyText(req.body)),
    ] : h('p', {class: 'muted'}, 'Not kept: only failed deliveries keep their request.'),
    h('h2', {}, `Events produced (${(d.events || []).length})`),
    (d.events || []).length ? (d.events || []).map((e) => h('div', {class: 'card'},
      h('div', {class: 'row'}, h('strong', {}, e.type), h('span', {class: 'muted'}, `seq ${e.seq}`), e.externalId ? h('span', {class: 'mono'}, `id ${e.externalId}`) : null),
      pre(json(e.record)))) : h('p', {class: 'muted'}, 'None.'));
}

