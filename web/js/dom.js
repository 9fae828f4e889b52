// dom.js -- build elements node by node: text from the server is never
// parsed as markup (and the CSP allows no inline script anyway).
//
//   h('a', {href: '#/queue', class: 'x'}, 'text', child, [more])
// Attributes: 'class', 'for', 'aria-*', 'data-*' and the like are set as
// attributes; on* keys become event listeners; boolean true sets an empty
// attribute and false/null/undefined leaves it out.  Children may be
// strings, numbers, nodes, arrays or null.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A labelled control: <div class="field"><label for=id>text</label>control</div>.
let seq = 0;
export function field(label, control, help) {
  if (!control.id) control.id = `f${++seq}`;
  let helpEl = null;
  if (help) {
    helpEl = h('small', { id: `${control.id}-help`, class: 'help' }, help);
    control.setAttribute('aria-describedby', helpEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, helpEl);
}

// <select> from [[value, label], ...]; value selected.
export function select(attrs, options, value) {
  const s = h('select', attrs, options.map(([v, l]) => h('option', { value: v }, l)));
  if (value !== undefined && value !== null) s.value = value;
  return s;
}
