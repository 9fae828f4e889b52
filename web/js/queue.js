// queue.js -- the review queue: the officer's districts (all of them for an
// admin), pending and oldest first by default; filters and an exact search
// live in the URL (#/queue?status=...&q=...) so a view can be bookmarked
// and Back works; "Load more" follows the server's keyset cursor.

import { h, field, select } from './dom.js';
import { t, num, when } from './i18n.js';
import { get } from './api.js';
import { loadLists, name, options } from './lists.js';
import { errorText } from './ui.js';

const FILTERS = ['status', 'district', 'from', 'to', 'channel', 'destination', 'skill', 'need', 'flag', 'q'];
const STATUSES = ['pending', 'needs_info', 'verified', 'rejected'];
const FLAGS = ['possible_duplicate', 'changed_since_verified'];

export function statusBadge(status) {
  return h('span', { class: `badge st-${status}` }, t(`st_${status}`));
}

function flagList(flags) {
  const list = Array.isArray(flags) ? flags : Object.keys(flags || {}).filter((k) => flags[k]);
  return list.map((f) => h('span', { class: `flag fl-${f}` }, t(`flag_${f}`)));
}

function cell(key, ...content) {
  return h('td', { 'data-label': t(key) }, ...content);
}

function row(it) {
  const skills = Array.isArray(it.skills) ? it.skills : [];
  const dest = it.destination ?? it.country;
  const waiting = it.days_waiting ?? it.waiting_days;
  return h('tr', { 'data-ref': it.ref },
    h('th', { scope: 'row', 'data-label': t('c_ref') }, h('a', { href: `#/record/${encodeURIComponent(it.ref)}` }, it.ref)),
    cell('c_status', statusBadge(it.status)),
    cell('c_district', name('districts', it.district)),
    cell('c_registered', when(it.registered_at, true)),
    cell('c_channel', it.channel ? t(`ch_${it.channel}`) : ''),
    cell('c_sex', it.sex ? t(`sex_${it.sex}`) : ''),
    cell('c_age', it.age_band ? num(it.age_band) : ''),
    cell('c_destination', name('countries', dest)),
    cell('c_skills', skills.map((s) => name('skills', s)).join(', ')),
    cell('c_need', name('needs', it.need)),
    cell('c_waiting', waiting === undefined || waiting === null ? '' : t('days', { n: num(waiting) })),
    cell('c_flags', flagList(it.flags)));
}

export async function render(main, ctx) {
  const p = ctx.params;
  const f = Object.fromEntries(FILTERS.map((k) => [k, p.get(k) || '']));
  if (!p.has('status')) f.status = 'pending';
  await loadLists();
  if (!ctx.isCurrent()) return;

  const user = ctx.user;
  const districtOpts = user.role === 'admin' ? options('districts') : options('districts', user.districts);
  const any = [['', t('any')]];
  const controls = {
    status: select({ name: 'status' }, [['all', t('all')], ...STATUSES.map((s) => [s, t(`st_${s}`)])], f.status),
    district: select({ name: 'district' }, [...any, ...districtOpts], f.district),
    from: h('input', { type: 'date', name: 'from', value: f.from }),
    to: h('input', { type: 'date', name: 'to', value: f.to }),
    channel: select({ name: 'channel' }, [...any, ['ussd', t('ch_ussd')], ['sms', t('ch_sms')]], f.channel),
    destination: select({ name: 'destination' }, [...any, ...options('countries')], f.destination),
    skill: select({ name: 'skill' }, [...any, ...options('skills')], f.skill),
    need: select({ name: 'need' }, [...any, ...options('needs')], f.need),
    flag: select({ name: 'flag' }, [...any, ...FLAGS.map((x) => [x, t(`flag_${x}`)])], f.flag),
    q: h('input', { type: 'search', name: 'q', value: f.q, autocomplete: 'off', spellcheck: 'false' }),
  };
  const form = h('form', { class: 'filters', role: 'search' },
    h('div', { class: 'field wide' }, h('label', { for: 'q' }, t('f_q')),
      h('div', { class: 'inline' }, Object.assign(controls.q, { id: 'q' }), h('button', { type: 'submit' }, t('search')))),
    h('details', { open: FILTERS.some((k) => k !== 'q' && k !== 'status' && f[k]) || undefined },
      h('summary', {}, t('filters')),
      h('div', { class: 'grid' },
        field(t('f_status'), controls.status),
        field(t('f_district'), controls.district),
        field(t('f_from'), controls.from),
        field(t('f_to'), controls.to),
        field(t('f_channel'), controls.channel),
        field(t('f_destination'), controls.destination),
        field(t('f_skill'), controls.skill),
        field(t('f_need'), controls.need),
        field(t('f_flag'), controls.flag)),
      h('div', { class: 'buttons' },
        h('button', { type: 'submit' }, t('apply')),
        h('a', { href: '#/queue', class: 'button secondary' }, t('reset')))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const k of FILTERS) {
      const v = controls[k].value.trim();
      if (v || k === 'status') q.set(k, v);
    }
    location.hash = `#/queue?${q}`;
  });
  // A filter takes effect when chosen; the search waits for its button.
  for (const k of FILTERS) if (k !== 'q') controls[k].addEventListener('change', () => form.requestSubmit());

  const body = h('tbody');
  const table = h('table', { class: 'queue' },
    h('caption', { class: 'sr-only' }, t('queue_title')),
    h('thead', {}, h('tr', {},
      ['c_ref', 'c_status', 'c_district', 'c_registered', 'c_channel', 'c_sex', 'c_age', 'c_destination', 'c_skills', 'c_need', 'c_waiting', 'c_flags']
        .map((k) => h('th', { scope: 'col' }, t(k))))),
    body);
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('load_more'));
  const msg = h('p', { class: 'error', role: 'alert', hidden: true });
  let next = null;
  let shown = 0;

  async function page(cursor) {
    more.disabled = true;
    msg.hidden = true;
    try {
      const query = { ...f };
      if (cursor) query.cursor = cursor;
      const d = await get('records', query);
      if (!ctx.isCurrent()) return;
      const items = d.items || [];
      for (const it of items) body.append(row(it));
      shown += items.length;
      next = d.next || null;
      more.hidden = !next;
      count.textContent = shown ? t('queue_count', { n: num(shown) }) : t('none_found');
    } catch (e) {
      msg.textContent = errorText(e);
      msg.hidden = false;
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => page(next));

  main.replaceChildren(h('h1', {}, t('queue_title')), form, count, msg, h('div', { class: 'scroll' }, table), more);
  await page(null);
}
