// Mapping playground: pick a connector, an event (or global webhook) and a method, give
// the method's input (a sample request, or a kept delivery's request in one click from
// its page), run EvaluateMethod and see the output or the error with its file:line.
// rest-api-mapping methods call the app, so they run only when "allow side effects" is ticked.
import {call} from '../api.js';
import {h, fill, field, json, pre, busy, errorBox} from '../dom.js';
import {sampleFromRequest} from './deliveries.js';

const SAMPLE = {
  method: 'POST', query: {}, headers: {'content-type': 'application/json'},
  data: {messages: [{id: 'm1', text: 'hello'}]}, rawBody: '{"messages":[{"id":"m1","text":"hello"}]}',
  parameters: {}, state: {}, connection: {id: 'conn_playground', parameters: {}}, connectorParameters: {}, credentials: {},
};

// The variables of each method (docs/connectors.md, "Method variables and results"):
// EvaluateMethod refuses any other input key, so the sample keeps only these.
const CONNECTION = ['connection', 'connectorParameters', 'credentials'];
const REQUEST = ['method', 'query', 'data', 'body', 'headers', 'rawBody'];
const VARIABLES = {
  handle: [...CONNECTION, ...REQUEST, 'state', 'parameters', 'webhookSecret'],
  subscribe: [...CONNECTION, 'webhookUri', 'webhookSecret', 'parameters', 'subscriptionId', 'state'],
  unsubscribe: [...CONNECTION, 'state', 'parameters'],
  refresh: [...CONNECTION, 'state', 'webhookUri', 'webhookSecret', 'parameters'],
  getEventsSelector: [...CONNECTION, 'parameters'],
  list: [...CONNECTION, 'parameters'],
  delete: [...CONNECTION, 'webhook', 'parameters'],
  fetch: [...CONNECTION, 'state', 'parameters', 'webhookSecret', 'delivery'],
};

// forMethod keeps the keys of sample that are variables of the method (a global
// webhook's handle has no connection, and its parameters are the connector's).
function forMethod(sample, kind, method) {
  const vars = kind === 'global' ? [...REQUEST, 'parameters'] : VARIABLES[method];
  if (!vars) return sample;
  return Object.fromEntries(Object.entries(sample).filter(([k]) => vars.includes(k)));
}

export async function render(main, {params}) {
  const {connectors = []} = await call('ConnectorService/ListConnectors', {});
  const connector = h('select', {name: 'connector', id: 'pg-connector'}, connectors.map((c) => h('option', {value: c.key, selected: c.key === params.get('connector') ? true : null}, `${c.name} (${c.key})`)));
  const target = h('select', {name: 'target', id: 'pg-target'});
  const method = h('select', {name: 'method', id: 'pg-method'});
  const sideEffects = h('input', {type: 'checkbox', name: 'sideEffects'});
  const input = h('textarea', {name: 'input', id: 'pg-input', rows: 16, spellcheck: 'false'});
  const deliveryId = h('input', {type: 'text', name: 'delivery', class: 'mono', size: 44, placeholder: 'dlv_…', value: params.get('from') || null});
  const out = h('div', {id: 'pg-output'}, h('p', {class: 'muted'}, 'Run the method to see its output.'));

  const drawTargets = () => {
    const c = connectors.find((x) => x.key === connector.value) || {events: [], globalWebhooks: []};
    fill(target,
      (c.events || []).map((e) => h('option', {value: 'event:' + e.key, selected: e.key === params.get('event') ? true : null}, `event ${e.key}`)),
      (c.globalWebhooks || []).map((g) => h('option', {value: 'global:' + g.key}, `global webhook ${g.key}`)));
    drawMethods();
  };
  const drawMethods = () => {
    const c = connectors.find((x) => x.key === connector.value) || {events: []};
    const [kind, key] = target.value.split(':');
    const methods = kind === 'global' ? ['handle'] : ((c.events || []).find((e) => e.key === key) || {}).methods || [];
    fill(method, methods.map((m) => h('option', {value: m, selected: m === (params.get('method') || 'handle') ? true : null}, m)));
  };
  // A sample the user has not edited follows the method: only its variables.
  let generated = null;
  const resample = () => {
    if (input.value !== generated) return;
    input.value = generated = json(forMethod(sample, target.value.split(':')[0], method.value));
  };
  connector.addEventListener('change', () => { drawTargets(); resample(); });
  target.addEventListener('change', () => { drawMethods(); resample(); });
  method.addEventListener('change', resample);
  drawTargets();

  const stored = sessionStorage.getItem('hookmap.playground.sample');
  let sample = SAMPLE;
  if (stored && params.get('from')) {
    try { sample = {...SAMPLE, ...JSON.parse(stored)}; } catch { /* keep the default */ }
  }
  if (params.get('subscription')) {
    try {
      const s = await call('SubscriptionService/GetSubscription', {id: params.get('subscription')});
      sample = {...sample, parameters: s.parameters || {}};
    } catch { /* not ours any more: keep the sample's */ }
  }
  input.value = generated = json(forMethod(sample, target.value.split(':')[0], method.value));

  const load = h('button', {type: 'button', class: 'secondary', onclick: () => busy(load, async () => {
    const d = await call('EventService/GetDelivery', {id: deliveryId.value.trim()});
    if (!d.request) throw new Error('delivery ' + d.id + ' kept no request (only failed deliveries keep theirs)');
    input.value = json({...JSON.parse(input.value || '{}'), ...sampleFromRequest(d.request)});
  }, out)}, 'Use its request');

  const run = h('button', {type: 'submit', id: 'pg-run'}, 'Run');
  const form = h('form', {onsubmit: (e) => {
    e.preventDefault();
    busy(run, async () => {
      let parsed;
      try { parsed = JSON.parse(input.value); } catch (err) { fill(out, errorBox(new Error('input is not JSON: ' + err.message))); return; }
      const [kind, key] = target.value.split(':');
      const req = {connectorKey: connector.value, method: method.value, input: parsed, allowSideEffects: sideEffects.checked};
      if (kind === 'global') req.globalWebhookKey = key; else req.eventKey = key;
      fill(out, h('p', {class: 'muted'}, 'Running…'));
      try {
        const r = await call('ConnectorService/EvaluateMethod', req);
        fill(out, h('h2', {}, 'Output'), pre(json(r.output)));
      } catch (err) {
        fill(out, h('h2', {}, 'Error'), errorBox(err));
      }
    });
  }},
  h('div', {class: 'row'}, field('Connector', connector), field('Event or global webhook', target), field('Method', method),
    h('label', {class: 'check'}, sideEffects, 'Allow side effects (rest-api-mapping calls the app)')),
  h('div', {class: 'row'}, field('Kept delivery id', deliveryId), load),
  field('Input: the method\u2019s variables (JSON)', input),
  h('div', {class: 'actions'}, run));

  fill(main, h('h1', {}, 'Mapping playground'), h('div', {class: 'grid2'}, h('div', {class: 'card'}, form), h('div', {class: 'card'}, out)));
}
