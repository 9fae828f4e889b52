// lists.js -- the code lists of config/lists/ (districts, countries,
// skills, needs, ...) with their Bangla and English labels, from
// GET /api/lists once per page load.  Without them the console still works
// and shows codes.

import { get } from './api.js';
import { label } from './i18n.js';

let lists = null;
let pending = null;

export async function loadLists() {
  if (lists) return lists;
  if (!pending) {
    pending = get('lists')
      .then((d) => (lists = d || {}))
      .catch(() => {
        pending = null;
        return {};
      });
  }
  return pending;
}

// [{code, en, bn, parent?}, ...] of list name ([] when unknown).
export function items(name) {
  return (lists && Array.isArray(lists[name]) && lists[name]) || [];
}

// The label of code in list name, in the reader's language; the code
// itself when the list or the code is unknown.
export function name(list, code) {
  if (code === null || code === undefined || code === '') return '';
  const it = items(list).find((i) => i.code === code);
  return it ? label(it) : String(code);
}

// [[code, label], ...] for a <select>, optionally only the codes in only.
export function options(list, only) {
  let its = items(list);
  if (only && only.length) {
    const known = new Set(its.map((i) => i.code));
    its = its.filter((i) => only.includes(i.code));
    for (const c of only) if (!known.has(c)) its.push({ code: c });
  }
  return its.map((i) => [i.code, label(i, i.code)]);
}
