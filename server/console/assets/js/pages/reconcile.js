// Reconcile: list the webhooks registered in the app for a connection's event and
// classify them (owned, orphaned, foreign, missing) with a dry run shown as a table; only
// then delete the orphans (foreign webhooks are never touched).
import {call, listAll} from '../api.js';
import {h, fill, table, enumBadge, busy, field, toast} from '../dom.js';

export async function render(main, {params}) {
  const [conns, {connectors = []}] = await Promise.all([
    listAll('ConnectionService/ListConnections', {}, 'connections'),
    call('ConnectorService/ListConnectors', {}),
  ]);
  const conn = h('select', {name: 'connection'}, conns.map((c) => h('option', {value: c.id, selected: c.id === params.get('connection') ? true : null}, `${c.name || c.id} (${c.connectorKey})`)));
  const event = h('select', {name: 'event'});
  const prefix = h('input', {type: 'text', name: 'prefix', placeholder: 'default: the public URL', class: 'mono', size: 36});
  const out = h('div', {});
  const drawEvents = () => {
    const c = conns.find((x) => x.id === conn.value) || {};
    const k = connectors.find((x) => x.key === c.connectorKey) || {events: []};
    const withList = (k.events || []).filter((e) => (e.methods || []).includes('list'));
    fill(event, withList.length ? withList.map((e) => h('option', {value: e.key, selected: e.key === params.get('event') ? true : null}, e.key))
      : h('option', {value: ''}, 'no event with a list method'));
  };
  conn.addEventListener('change', drawEvents);
  drawEvents();

  let last = null;
  const runMode = async (mode) => {
    const r = await call('SubscriptionService/ReconcileWebhooks', {
      connectionId: conn.value, eventKey: event.value, mode, urlPrefix: prefix.value.trim(),
    });
    last = {mode, r, key: conn.value + '/' + event.value};
    show(r, mode);
  };
  const dry = h('button', {type: 'button', onclick: () => busy(dry, () => runMode('RECONCILE_MODE_DRY_RUN'), out)}, 'Dry run');
  const wipe = h('button', {type: 'button', class: 'danger', disabled: true, onclick: () => {
    if (!last || last.key !== conn.value + '/' + event.value) return;
    if (!confirm(`Delete ${last.r.orphaned} orphaned webhook(s) in the app?`)) return;
    busy(wipe, async () => { await runMode('RECONCILE_MODE_DELETE_ORPHANS'); toast('Orphans deleted'); }, out);
  }}, 'Delete orphans');
  for (const c of [conn, event, prefix]) c.addEventListener('change', () => { wipe.disabled = true; last = null; });

  function show(r, mode) {
    wipe.disabled = !(mode === 'RECONCILE_MODE_DRY_RUN' && r.orphaned > 0);
    fill(out,
      h('p', {}, `${mode === 'RECONCILE_MODE_DRY_RUN' ? 'Dry run' : 'Deleted orphans'}: ${r.owned} owned, ${r.orphaned} orphaned, ${r.foreign} foreign, ${r.missing} missing, ${r.deleted} deleted, ${r.failed} failed.`),
      table([
        ['Webhook id', (w) => h('span', {class: 'mono'}, w.id || '—')],
        ['URL', (w) => h('span', {class: 'mono'}, w.url || '—')],
        ['Classification', (w) => enumBadge(w.classification, 'WEBHOOK_CLASSIFICATION_')],
        ['Subscription', (w) => h('span', {class: 'mono'}, w.subscriptionId || '—')],
        ['Deleted', (w) => w.deleted ? 'yes' : ''],
        ['Error', (w) => w.error ? h('span', {class: 'error-text'}, w.error) : ''],
      ], r.webhooks || [], 'The app lists no webhook for this event.'));
  }

  fill(main,
    h('h1', {}, 'Reconcile'),
    h('p', {class: 'muted'}, 'A dry run lists what the app has registered and what hookmap would do; nothing changes until you delete the orphans.'),
    h('div', {class: 'card'}, h('div', {class: 'row'}, field('Connection', conn), field('Event', event), field('URL prefix', prefix), dry, wipe)),
    out);
}
