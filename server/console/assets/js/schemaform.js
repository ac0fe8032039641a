// A form drawn from a JSON Schema of an object: one control per property (text, number,
// checkbox, select for enums, a JSON box for nested values), required ones marked. A
// schema without properties gets one JSON box for the whole object. secret: password
// inputs (credentials).
import {h, field} from './dom.js';

export function schemaForm(schema, {secret = false, legend = ''} = {}) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const names = Object.keys(props);
  const controls = [];
  let raw = null;
  const body = [];
  if (!names.length) {
    raw = h('textarea', {rows: 4, 'aria-label': legend || 'JSON object', spellcheck: 'false'}, '{}');
    body.push(field((legend || 'Value') + ' (JSON object)', raw));
  }
  for (const name of names) {
    const p = props[name] || {};
    const type = Array.isArray(p.type) ? p.type.find((t) => t !== 'null') : p.type;
    let input;
    let kind = type;
    if (Array.isArray(p.enum)) {
      input = h('select', {name}, [h('option', {value: ''}, '—'), ...p.enum.map((v) => h('option', {value: JSON.stringify(v)}, String(v)))]);
      kind = 'enum';
    } else if (type === 'boolean') {
      input = h('input', {type: 'checkbox', name, checked: p.default === true});
    } else if (type === 'integer' || type === 'number') {
      input = h('input', {type: 'number', name, step: type === 'integer' ? '1' : 'any', value: p.default ?? null});
    } else if (type === 'string' || type === undefined && !p.properties) {
      input = h('input', {type: secret || /secret|token|password/i.test(name) ? 'password' : 'text', name,
        autocomplete: 'off', value: typeof p.default === 'string' ? p.default : null, placeholder: p.description || null});
      kind = 'string';
    } else {
      input = h('textarea', {name, rows: 3, spellcheck: 'false'}, p.default !== undefined ? JSON.stringify(p.default) : '');
      kind = 'json';
    }
    controls.push({name, kind, input, required: required.has(name)});
    const label = p.title || name;
    body.push(type === 'boolean'
      ? h('label', {class: 'check'}, input, h('span', {class: required.has(name) ? 'req' : null}, label))
      : field(label + (p.description && kind !== 'string' ? ` — ${p.description}` : ''), input, required.has(name)));
  }
  const el = h('fieldset', {}, legend ? h('legend', {}, legend) : null, h('div', {class: 'row'}, body));

  // value returns the object the controls describe; it throws on a JSON box that does not parse.
  function value() {
    if (raw) {
      const v = JSON.parse(raw.value || '{}');
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${legend || 'value'}: a JSON object is needed`);
      return v;
    }
    const out = {};
    for (const c of controls) {
      const v = c.input.value;
      switch (c.kind) {
        case 'boolean': if (c.input.checked || c.required) out[c.name] = c.input.checked; break;
        case 'integer': case 'number': if (v !== '') out[c.name] = Number(v); break;
        case 'enum': if (v !== '') out[c.name] = JSON.parse(v); break;
        case 'json':
          if (v.trim() !== '') {
            try { out[c.name] = JSON.parse(v); } catch (e) { throw new Error(`${c.name}: not JSON (${e.message})`); }
          }
          break;
        default: if (v !== '' || c.required) out[c.name] = v;
      }
    }
    return out;
  }
  return {el, value};
}
