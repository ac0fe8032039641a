// Live tail: the events a consumer would receive, as they are committed (StreamEvents
// through the JSON API, starting at the latest event). The console's stream is its own
// consumer name and never acks, so it moves no cursor. Pause holds new events back;
// filters restart the stream.
import {stream} from '../api.js';
import {h, fill, field, json, pre, time, errorBox} from '../dom.js';

const MAX = 200;

const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);

export async function render(main, {params, go}) {
  const f = {types: params.get('types') || '', events: params.get('events') || '', subscriptions: params.get('subscriptions') || ''};
  const types = h('input', {type: 'text', name: 'types', value: f.types, placeholder: 'message.created, …'});
  const events = h('input', {type: 'text', name: 'events', value: f.events, placeholder: 'event keys'});
  const subs = h('input', {type: 'text', name: 'subscriptions', value: f.subscriptions, placeholder: 'subscription ids', class: 'mono'});
  const status = h('span', {role: 'status', class: 'muted'}, 'Connecting…');
  const items = h('ul', {class: 'tail-list', 'aria-live': 'off'});
  const err = h('div', {});
  let paused = false;
  let held = [];
  const pause = h('button', {type: 'button', class: 'secondary', 'aria-pressed': 'false', onclick: () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    fill(pause, paused ? 'Resume' : 'Pause');
    if (!paused) { for (const e of held) show(e); held = []; }
    updateStatus();
  }}, 'Pause');
  const clear = h('button', {type: 'button', class: 'secondary', onclick: () => { items.replaceChildren(); held = []; count = 0; updateStatus(); }}, 'Clear');
  let count = 0;
  let live = false;
  const updateStatus = () => fill(status, `${live ? 'Live' : 'Not connected'} · ${count} event(s) shown${paused ? ` · paused, ${held.length} held back` : ''}`);

  function show(e) {
    count++;
    items.prepend(h('li', {},
      h('div', {class: 'meta'}, h('strong', {}, e.type), h('span', {class: 'muted'}, `seq ${e.seq}`), time(e.receiveTime),
        h('span', {class: 'mono'}, e.eventKey), h('span', {class: 'mono'}, e.subscriptionId),
        e.deliveryId ? h('a', {href: '#/deliveries/' + encodeURIComponent(e.deliveryId)}, 'delivery') : null),
      pre(json(e.record))));
    while (items.children.length > MAX) items.lastElementChild.remove();
  }

  fill(main,
    h('h1', {}, 'Live tail'),
    h('p', {class: 'muted'}, 'Events as a consumer receives them, newest first, from the moment this page opened. The tail acks nothing.'),
    h('form', {class: 'card', onsubmit: (e) => {
      e.preventDefault();
      go('tail', {types: types.value.trim(), events: events.value.trim(), subscriptions: subs.value.trim()});
    }}, h('div', {class: 'row'}, field('Types', types), field('Event keys', events), field('Subscription ids', subs),
      h('button', {type: 'submit'}, 'Apply filter'))),
    h('div', {class: 'actions'}, pause, clear, status),
    err, items);

  const ctl = new AbortController();
  let lastSeq = 0;
  const consumer = 'console-tail-' + crypto.getRandomValues(new Uint32Array(2)).join('');
  const req = {consumer, start: {latest: true}, filter: {types: list(f.types), eventKeys: list(f.events), subscriptionIds: list(f.subscriptions)}};
  (async () => {
    for (let attempt = 0; !ctl.signal.aborted; attempt++) {
      try {
        await stream('EventService/StreamEvents', req, (e) => {
          lastSeq = Number(e.seq);
          if (paused) held.push(e); else show(e);
          updateStatus();
        }, ctl.signal, () => { live = true; attempt = 0; fill(err); updateStatus(); main.dataset.tail = 'live'; });
      } catch (e) {
        if (ctl.signal.aborted) return;
        fill(err, errorBox(e));
      }
      live = false; updateStatus();
      main.dataset.tail = 'closed';
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 15000)));
      // Resume after the last event shown, or at the latest.
      req.start = lastSeq ? {seq: String(lastSeq + 1)} : {latest: true};
    }
  })();
  return () => ctl.abort();
}
