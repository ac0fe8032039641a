// The JSON API client: Connect-protocol calls to /api/ with the signed-in token in the
// Authorization header (never in a URL).

const KEY = 'hookmap.token';
const WS = 'hookmap.workspace';

export const session = {
  token() { return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || ''; },
  workspace() { return sessionStorage.getItem(WS) || localStorage.getItem(WS) || ''; },
  // save keeps the token in this tab only, unless remember (then every tab, until sign-out).
  save(token, workspace, remember) {
    this.clear();
    const store = remember ? localStorage : sessionStorage;
    store.setItem(KEY, token);
    if (workspace) store.setItem(WS, workspace);
  },
  clear() {
    for (const s of [sessionStorage, localStorage]) { s.removeItem(KEY); s.removeItem(WS); }
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || 'unknown';
    this.fields = [];
    for (const d of body.details || []) {
      for (const v of (d.debug && d.debug.fieldViolations) || []) this.fields.push(v);
    }
  }
  // text is the message with each field violation on its own line.
  text() {
    return [`${this.code}: ${this.message}`, ...this.fields.map((f) => `${f.field}: ${f.description}`)].join('\n');
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

function headers(contentType) {
  const h = {'Content-Type': contentType, 'Connect-Protocol-Version': '1'};
  const t = session.token();
  if (t) h.Authorization = 'Bearer ' + t;
  const ws = session.workspace();
  if (ws) h['X-Hookmap-Workspace'] = ws;
  return h;
}

// call runs one unary RPC: call('EventService/ListDeliveries', {pageSize: 50}).
export async function call(method, body = {}) {
  const resp = await fetch('/api/hookmap.v1.' + method, {
    method: 'POST', headers: headers('application/json'), body: JSON.stringify(body), credentials: 'omit',
  });
  const text = await resp.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = {message: text}; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (err.code === 'unauthenticated') onUnauthenticated(err);
    throw err;
  }
  return data;
}

// stream runs a server-streaming RPC (the Connect streaming protocol: 5-byte envelopes)
// and calls onMessage for each message until the stream ends or signal aborts. It
// resolves when the stream ends and rejects with an ApiError for an error end.
export async function stream(method, body, onMessage, signal, onOpen = () => {}) {
  const payload = new TextEncoder().encode(JSON.stringify(body));
  const env = new Uint8Array(5 + payload.length);
  new DataView(env.buffer).setUint32(1, payload.length);
  env.set(payload, 5);
  const resp = await fetch('/api/hookmap.v1.' + method, {
    method: 'POST', headers: headers('application/connect+json'), body: env, signal, credentials: 'omit',
  });
  if (!resp.ok) {
    let data = {};
    try { data = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, data);
  }
  onOpen();
  const reader = resp.body.getReader();
  let buf = new Uint8Array(0);
  const dec = new TextDecoder();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf); next.set(value, buf.length); buf = next;
    while (buf.length >= 5) {
      const flags = buf[0];
      const len = new DataView(buf.buffer, buf.byteOffset + 1, 4).getUint32(0);
      if (buf.length < 5 + len) break;
      const msg = JSON.parse(dec.decode(buf.subarray(5, 5 + len)) || '{}');
      buf = buf.slice(5 + len);
      if (flags & 2) {
        if (msg.error) {
          const err = new ApiError(200, msg.error);
          if (err.code === 'unauthenticated') onUnauthenticated(err);
          throw err;
        }
        return;
      }
      onMessage(msg);
    }
  }
}

// listAll pages through a List RPC (bounded: at most max items).
export async function listAll(method, body, key, max = 1000) {
  const out = [];
  let pageToken = '';
  do {
    const r = await call(method, {...body, pageSize: 200, pageToken});
    out.push(...(r[key] || []));
    pageToken = r.nextPageToken;
  } while (pageToken && out.length < max);
  return out;
}
