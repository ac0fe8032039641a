// Connectors: what is loaded, each event with its methods, the problems of the last load
// (admin token), and Reload.
import {call} from '../api.js';
import {h, fill, table, time, busy, toast} from '../dom.js';

function problems(diags) {
  if (!diags || !diags.length) return h('p', {class: 'muted'}, 'No problems.');
  return h('ul', {class: 'problems'}, diags.map((d) => h('li', {}, `${d.file}:${d.line}:${d.column}: ${d.message}`)));
}

export async function render(main) {
  const r = await call('ConnectorService/ListConnectors', {});
  const out = h('div', {});
  const reload = h('button', {type: 'button', onclick: () => busy(reload, async () => {
    const res = await call('ConnectorService/ReloadConnectors', {});
    toast(`Reloaded: ${(res.loaded || []).length} loaded, ${(res.keptPrevious || []).length} kept their previous version, ${(res.diagnostics || []).length} problems`);
    await render(main);
  }, out)}, 'Reload connectors');
  const rows = [];
  for (const c of r.connectors || []) {
    for (const ev of c.events || []) rows.push({c, ev, kind: ev.implementationType});
    for (const gw of c.globalWebhooks || []) rows.push({c, ev: {key: gw.key, name: gw.name, methods: ['handle']}, kind: 'global webhook (app-level URL)'});
  }
  fill(main,
    h('h1', {}, 'Connectors'),
    h('div', {class: 'actions'}, reload, h('span', {class: 'muted'}, 'Last load: ', time(r.loadTime))),
    out,
    h('h2', {}, 'Problems from the last load'),
    problems(r.diagnostics),
    h('h2', {}, `Loaded (${(r.connectors || []).length})`),
    table([
      ['Connector', (x) => [h('strong', {}, x.c.name), h('br'), h('span', {class: 'mono'}, x.c.key)]],
      ['Event', (x) => [x.ev.name || x.ev.key, h('br'), h('span', {class: 'mono'}, x.ev.key)]],
      ['Kind', (x) => x.kind],
      ['Methods', (x) => h('span', {class: 'mono'}, (x.ev.methods || []).join(', '))],
      ['', (x) => x.kind === 'global webhook (app-level URL)' ? '' : h('a', {href: `#/playground?connector=${encodeURIComponent(x.c.key)}&event=${encodeURIComponent(x.ev.key)}`}, 'Try handle')],
    ], rows, 'No connector is loaded.'));
}
