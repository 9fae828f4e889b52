// audit.js -- the audit log (admin only): newest first, filtered by
// officer, target, action and dates (kept in the URL), "Load more" on the
// server's cursor.

import { h, field } from './dom.js';
import { t } from './i18n.js';
import { get } from './api.js';
import { errorText } from './ui.js';

const FILTERS = ['actor', 'target', 'action', 'from', 'to'];

function detailText(d) {
  if (d === null || d === undefined) return '';
  if (typeof d !== 'object') return String(d);
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

export async function render(main, ctx) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, ctx.params.get(k) || '']));
  const controls = {
    actor: h('input', { name: 'actor', value: f.actor, autocomplete: 'off' }),
    target: h('input', { name: 'target', value: f.target, autocomplete: 'off' }),
    action: h('input', { name: 'action', value: f.action, autocomplete: 'off' }),
    from: h('input', { type: 'date', name: 'from', value: f.from }),
    to: h('input', { type: 'date', name: 'to', value: f.to }),
  };
  const form = h('form', { class: 'filters', role: 'search' },
    h('div', { class: 'grid' },
      field(t('f_actor'), controls.actor),
      field(t('f_target'), controls.target),
      field(t('f_action'), controls.action),
      field(t('f_from'), controls.from),
      field(t('f_to'), controls.to)),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit' }, t('apply')),
      h('a', { href: '#/audit', class: 'button secondary' }, t('reset'))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const k of FILTERS) if (controls[k].value.trim()) q.set(k, controls[k].value.trim());
    location.hash = `#/audit?${q}`;
  });

  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('load_more'));
  const msg = h('p', { class: 'error', role: 'alert', hidden: true });
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  let next = null;
  let shown = 0;
  async function page(cursor) {
    more.disabled = true;
    try {
      const q = { ...f };
      // the date picked is the last day shown: the API's "to" is exclusive
      if (/^\d{4}-\d{2}-\d{2}$/.test(q.to)) {
        const d = new Date(`${q.to}T00:00:00Z`);
        d.setUTCDate(d.getUTCDate() + 1);
        q.to = d.toISOString().slice(0, 10);
      }
      if (cursor) q.cursor = cursor;
      const d = await get('audit', q);
      if (!ctx.isCurrent()) return;
      for (const a of d.items || []) {
        body.append(h('tr', {},
          h('td', { 'data-label': t('a_at') }, h('time', { datetime: a.at }, String(a.at || '').replace('T', ' ').replace(/\.\d+/, ''))),
          h('td', { 'data-label': t('a_actor') }, a.actor ?? a.actor_name ?? a.actor_id ?? ''),
          h('td', { 'data-label': t('a_role') }, a.role ? t(`role_${a.role}`) : ''),
          h('td', { 'data-label': t('a_action'), class: 'mono' }, a.action || ''),
          h('td', { 'data-label': t('a_target'), class: 'mono' }, a.target || ''),
          h('td', { 'data-label': t('a_outcome') }, h('span', { class: `outcome oc-${a.outcome}` }, a.outcome || '')),
          h('td', { 'data-label': t('a_source'), class: 'mono' }, a.source || ''),
          h('td', { 'data-label': t('a_detail'), class: 'mono small' }, detailText(a.detail))));
      }
      shown += (d.items || []).length;
      next = d.next || null;
      more.hidden = !next;
      count.textContent = shown ? '' : t('none_found');
    } catch (e) {
      msg.textContent = errorText(e);
      msg.hidden = false;
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => page(next));
  main.replaceChildren(
    h('h1', {}, t('audit_title')),
    form,
    count,
    msg,
    h('div', { class: 'scroll' }, h('table', { class: 'audit' },
      h('caption', { class: 'sr-only' }, t('audit_title')),
      h('thead', {}, h('tr', {}, ['a_at', 'a_actor', 'a_role', 'a_action', 'a_target', 'a_outcome', 'a_source', 'a_detail'].map((k) => h('th', { scope: 'col' }, t(k))))),
      body)),
    more);
  await page(null);
}
