// Connections and their subscriptions: create (forms drawn from the connector's JSON
// Schemas) and delete; each subscription's status, last error, next refresh and webhook
// URI to copy.
import {call, listAll} from '../api.js';
import {h, fill, table, time, enumBadge, busy, toast, copyButton, field, errorBox} from '../dom.js';
import {schemaForm} from '../schemaform.js';

export async function render(main, {id, go}) {
  const {connectors = []} = await call('ConnectorService/ListConnectors', {});
  if (id) return detail(main, id, connectors, go);
  const conns = await listAll('ConnectionService/ListConnections', {}, 'connections');
  fill(main,
    h('h1', {}, 'Connections'),
    createConnection(connectors, go),
    table([
      ['Name', (c) => h('a', {href: '#/connections/' + encodeURIComponent(c.id)}, c.name || c.id)],
      ['Connector', (c) => h('span', {class: 'mono'}, c.connectorKey)],
      ['Id', (c) => h('span', {class: 'mono'}, c.id)],
      ['Credentials', (c) => c.hasCredentials ? 'set' : '—'],
      ['Created', (c) => time(c.createTime)],
    ], conns, 'No connection yet: create one above.'));
}

function createConnection(connectors, go) {
  const out = h('div', {});
  const name = h('input', {type: 'text', name: 'name', required: true, autocomplete: 'off'});
  const pick = h('select', {name: 'connector'}, connectors.map((c) => h('option', {value: c.key}, `${c.name} (${c.key})`)));
  const forms = h('div', {});
  let params; let creds;
  const draw = () => {
    const c = connectors.find((x) => x.key === pick.value) || {};
    params = schemaForm(c.connectionParametersSchema, {legend: 'Connection parameters'});
    creds = schemaForm(c.credentialsSchema, {legend: 'Credentials (write-only: never shown again)', secret: true});
    fill(forms, params.el, creds.el);
  };
  pick.addEventListener('change', draw);
  draw();
  const submit = h('button', {type: 'submit'}, 'Create connection');
  const form = h('form', {onsubmit: (e) => {
    e.preventDefault();
    busy(submit, async () => {
      fill(out);
      const c = await call('ConnectionService/CreateConnection', {
        connectorKey: pick.value, name: name.value, parameters: params.value(), credentials: creds.value(),
      });
      toast('Connection created');
      go('connections/' + c.id);
    }, out);
  }}, h('div', {class: 'row'}, field('Connector', pick, true), field('Name', name, true)), forms, submit, out);
  return h('details', {class: 'card'}, h('summary', {}, 'New connection'), form);
}

async function detail(main, id, connectors, go) {
  const conn = await call('ConnectionService/GetConnection', {id});
  const connector = connectors.find((c) => c.key === conn.connectorKey) || {events: []};
  const subs = await listAll('SubscriptionService/ListSubscriptions', {connectionId: id}, 'subscriptions');
  const out = h('div', {});
  const del = h('button', {type: 'button', class: 'danger', onclick: () => {
    if (!confirm(`Delete connection ${conn.name || conn.id} and its ${subs.length} subscription(s)?`)) return;
    busy(del, async () => {
      await call('ConnectionService/DeleteConnection', {id});
      toast('Connection deleted');
      go('connections');
    }, out);
  }}, 'Delete connection');
  fill(main,
    h('p', {}, h('a', {href: '#/connections'}, '← Connections')),
    h('h1', {}, conn.name || conn.id),
    h('div', {class: 'card'}, h('dl', {class: 'kv'},
      h('dt', {}, 'Id'), h('dd', {class: 'mono'}, conn.id),
      h('dt', {}, 'Connector'), h('dd', {}, `${connector.name || ''} (${conn.connectorKey})`),
      h('dt', {}, 'Parameters'), h('dd', {class: 'mono'}, JSON.stringify(conn.parameters || {})),
      h('dt', {}, 'Credentials'), h('dd', {}, conn.hasCredentials ? 'set (write-only)' : 'none'),
      h('dt', {}, 'Created'), h('dd', {}, time(conn.createTime))),
    h('div', {class: 'actions'}, del), out),
    h('h2', {}, 'Subscriptions'),
    createSubscription(conn, connector, () => render(main, {id, go})),
    table([
      ['Event', (s) => h('span', {class: 'mono nowrap'}, s.eventKey)],
      ['Status', (s) => enumBadge(s.status, 'SUBSCRIPTION_STATUS_')],
      ['Webhook URI', (s) => s.webhookUri ? [h('span', {class: 'mono'}, s.webhookUri), ' ', copyButton(s.webhookUri)] : '—'],
      ['Last error', (s) => s.lastError ? h('span', {class: 'error-text mono'}, s.lastError) : '—'],
      ['Next refresh', (s) => time(s.nextRefreshTime)],
      ['Parameters', (s) => h('span', {class: 'mono'}, JSON.stringify(s.parameters || {}))],
      ['', (s) => h('div', {class: 'actions'},
        h('a', {href: `#/deliveries?subscription=${encodeURIComponent(s.id)}`}, 'Deliveries'),
        h('a', {href: `#/reconcile?connection=${encodeURIComponent(id)}&event=${encodeURIComponent(s.eventKey)}`}, 'Reconcile'),
        deleteSubscription(s, () => render(main, {id, go})))],
    ], subs, 'No subscription yet.'));
}

function deleteSubscription(s, done) {
  const b = h('button', {type: 'button', class: 'danger', 'aria-label': `Delete subscription ${s.id}`, onclick: () => {
    if (!confirm(`Delete subscription ${s.id} (runs unsubscribe in the app)?`)) return;
    busy(b, async () => {
      try {
        await call('SubscriptionService/DeleteSubscription', {id: s.id});
      } catch (err) {
        if (!confirm(`Unsubscribe failed:\n${err.message}\n\nDelete it anyway (force)?`)) throw err;
        const r = await call('SubscriptionService/DeleteSubscription', {id: s.id, force: true});
        if (r.webhookMayRemain) {
          toast(`Subscription deleted here, but the app may still hold its webhook for ${r.webhookUri}: remove it there, or with Reconcile (delete orphans).`, true);
          await done();
          return;
        }
      }
      toast('Subscription deleted');
      await done();
    });
  }}, 'Delete');
  return b;
}

function createSubscription(conn, connector, done) {
  const out = h('div', {});
  const events = (connector.events || []);
  const pick = h('select', {name: 'event'}, events.map((e) => h('option', {value: e.key}, `${e.name || e.key} (${e.key})`)));
  const forms = h('div', {});
  let params;
  const draw = () => {
    const ev = events.find((x) => x.key === pick.value) || {};
    params = schemaForm(ev.parametersSchema, {legend: 'Event parameters'});
    fill(forms, params.el);
  };
  pick.addEventListener('change', draw);
  draw();
  const submit = h('button', {type: 'submit'}, 'Create subscription');
  const form = h('form', {onsubmit: (e) => {
    e.preventDefault();
    busy(submit, async () => {
      fill(out);
      let parameters;
      try { parameters = params.value(); } catch (err) { fill(out, errorBox(err)); return; }
      const s = await call('SubscriptionService/CreateSubscription', {connectionId: conn.id, eventKey: pick.value, parameters});
      toast(`Subscription ${s.status.replace('SUBSCRIPTION_STATUS_', '').toLowerCase()}`);
      await done();
    }, out);
  }}, h('div', {class: 'row'}, field('Event', pick, true)), forms, submit, out);
  return h('details', {class: 'card', open: true}, h('summary', {}, 'New subscription'), form);
}
