// stats.js -- the dashboard: counts of returnees by one dimension or two
// (GET /api/stats), filtered by status, district, sex and dates (kept in
// the URL), as a table and SVG bars, with the suppressed CSV to download
// (GET /api/export.csv?kind=aggregate).  Analysts see small counts as "<5"
// and "x" (hidden so no "<5" can be worked out); officers and admins the
// true counts on screen.  Officers and admins may also download the
// records behind the view (kind=records): the server streams it, and this
// page reads the stream, shows the rows so far against X-Total-Rows, and
// saves the file only when it ended whole.  Each CSV has its data
// dictionary (GET /api/export/dictionary.csv) beside it.

import { h, field } from './dom.js';
import { t, num } from './i18n.js';
import { get, me } from './api.js';
import { loadLists, name, options } from './lists.js';
import { errorText } from './ui.js';

const VIEWS = ['district', 'division', 'sex', 'age_band', 'education', 'country', 'skill', 'reason',
  'need', 'return_year', 'channel', 'status', 'week',
  'sex,age_band', 'country,skill', 'education,sex', 'district,need', 'district,status'];
const FILTERS = ['status', 'district', 'sex', 'from', 'to'];
const LIST_OF = {
  district: 'districts', division: 'divisions', education: 'education', country: 'countries',
  skill: 'skills', reason: 'reasons', need: 'needs',
};
const SVG = 'http://www.w3.org/2000/svg';

function valueName(dim, code) {
  if (code === 'unknown') return t('st_unknown');
  if (code === 'none' && dim === 'skill') return t('st_no_skill');
  if (LIST_OF[dim]) return name(LIST_OF[dim], code);
  if (dim === 'sex' || dim === 'status' || dim === 'channel') return t(`st_${dim}_${code}`);
  return String(code);
}

// GET /api/export.csv?kind=records, read as it streams: progress(rows so
// far, total) after each part; the file is saved when the body ended
// whole (a cut connection throws, and nothing is saved).  Rows are counted
// as CRLFs outside quotes (a note may hold a line break).
async function downloadRecords(query, progress) {
  const q = new URLSearchParams({ kind: 'records' });
  for (const k of FILTERS) if (query[k]) q.set(k, query[k]);
  const res = await fetch(`/api/export.csv?${q}`, { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    const d = await res.json().catch(() => null);
    const e = new Error((d && d.message) || `HTTP ${res.status}`);
    e.code = d && d.error;
    throw e;
  }
  const total = Number(res.headers.get('X-Total-Rows')) || 0;
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  const reader = res.body.getReader();
  const parts = [];
  let rows = -1; // the header line
  let quoted = false;
  let cr = false;
  progress(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    for (const b of value) {
      if (b === 0x22) quoted = !quoted;
      else if (b === 0x0a && cr && !quoted) rows += 1;
      cr = b === 0x0d;
    }
    progress(Math.max(rows, 0), total);
  }
  const a = h('a', { href: URL.createObjectURL(new Blob(parts, { type: 'text/csv' })),
    download: m ? m[1] : 'remigate_records.csv', hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  return Math.max(rows, 0);
}

function count(n) {
  return typeof n === 'number' ? num(n) : n;
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

// Horizontal bars of [label, n] (hidden counts drawn as a hatched stub).
function bars(rows) {
  const shown = rows.filter(([, n]) => typeof n === 'number');
  const max = Math.max(1, ...shown.map(([, n]) => n));
  const rowH = 22;
  const el = svg('svg', { class: 'bars', role: 'img', 'aria-label': t('st_chart'),
    viewBox: `0 0 600 ${rows.length * rowH + 4}`, width: '100%' });
  rows.forEach(([label, n], i) => {
    const y = i * rowH + 2;
    const w = typeof n === 'number' ? Math.max(1, (n / max) * 380) : 8;
    const text = svg('text', { x: 0, y: y + 15, class: 'bar-label' });
    text.textContent = label.length > 26 ? `${label.slice(0, 25)}…` : label;
    const rect = svg('rect', { x: 200, y, width: w, height: rowH - 6,
      class: typeof n === 'number' ? 'bar' : 'bar hidden-count' });
    const val = svg('text', { x: 206 + w, y: y + 15, class: 'bar-value' });
    val.textContent = count(n);
    el.append(text, rect, val);
  });
  return el;
}

export async function render(main, ctx) {
  await loadLists();
  const view = VIEWS.includes(ctx.params.get('dims')) ? ctx.params.get('dims') : 'district';
  const f = Object.fromEntries(FILTERS.map((k) => [k, ctx.params.get(k) || '']));
  const dims = view.split(',');
  const viewSel = h('select', { name: 'dims' }, VIEWS.map((v) =>
    h('option', { value: v, selected: v === view }, v.split(',').map((d) => t(`st_dim_${d}`)).join(' × '))));
  const statusSel = h('select', { name: 'status' },
    ['', 'verified', 'pending', 'needs_info', 'rejected'].map((s) =>
      h('option', { value: s, selected: s === f.status }, s ? t(`st_status_${s}`) : t('st_all'))));
  const districtSel = h('select', { name: 'district' },
    h('option', { value: '' }, t('st_all')),
    options('districts').map(([c, l]) => h('option', { value: c, selected: c === f.district }, l)));
  const sexSel = h('select', { name: 'sex' }, ['', 'f', 'm', 'x'].map((s) =>
    h('option', { value: s, selected: s === f.sex }, s ? t(`st_sex_${s}`) : t('st_all'))));
  const from = h('input', { type: 'date', name: 'from', value: f.from });
  const to = h('input', { type: 'date', name: 'to', value: f.to });
  const controls = { dims: viewSel, status: statusSel, district: districtSel, sex: sexSel, from, to };
  const form = h('form', { class: 'filters', role: 'search' },
    h('div', { class: 'grid' },
      ...[['st_view', viewSel], ['st_f_status', statusSel], ['st_f_district', districtSel],
        ['st_f_sex', sexSel], ['f_from', from], ['f_to', to]].map(([k, c]) => field(t(k), c))),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('apply'))));
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, c] of Object.entries(controls)) if (c.value) q.set(k, c.value);
    location.hash = `#/stats?${q}`;
  };
  form.addEventListener('submit', apply);
  for (const c of Object.values(controls)) c.addEventListener('change', apply);

  const query = { dims: view, ...f };
  const csv = new URLSearchParams({ kind: 'aggregate' });
  for (const [k, v] of Object.entries(query)) if (v) csv.set(k, v);
  const download = h('a', { class: 'button secondary', href: `/api/export.csv?${csv}`, download: '' }, t('st_download'));
  const dict = (q) => h('a', { class: 'dictionary', href: `/api/export/dictionary.csv?${new URLSearchParams(q)}`, download: '' },
    t('st_dictionary'));
  const role = (me() || {}).role;
  let records = null;
  if (role === 'admin' || role === 'officer') {
    const status = h('p', { id: 'records-progress', role: 'status', 'aria-live': 'polite' });
    const button = h('button', { type: 'button', class: 'secondary', id: 'records-download' }, t('st_records'));
    button.addEventListener('click', async () => {
      button.disabled = true;
      status.classList.remove('error');
      try {
        const n = await downloadRecords(f, (k, total) => {
          status.textContent = t('st_records_progress', { n: num(k), total: num(total) });
        });
        status.textContent = t('st_records_done', { n: num(n) });
      } catch (e) {
        status.classList.add('error');
        status.textContent = e.code ? errorText(e) : t('st_records_failed');
      } finally {
        button.disabled = false;
      }
    });
    records = h('section', { class: 'records-export' },
      h('p', { class: 'muted' }, t('st_records_note',
        { scope: t(role === 'admin' ? 'st_records_scope_all' : 'st_records_scope_mine') })),
      h('div', { class: 'buttons' }, button, dict({ kind: 'records' })),
      status);
  }
  let d;
  try {
    d = await get('stats', query);
  } catch (e) {
    if (!ctx.isCurrent()) return;
    main.replaceChildren(h('h1', {}, t('st_title')), form,
      h('p', { class: 'error', role: 'alert' }, e.code === 'too_few' ? t('st_too_few') : errorText(e)));
    return;
  }
  // the verification funnel: days from registration to a decision
  let days = null;
  if (view === 'district,status') {
    try {
      days = await get('stats/decision-days', { district: f.district, from: f.from, to: f.to });
    } catch {
      days = null;
    }
  }
  if (!ctx.isCurrent()) return;
  const notes = [];
  if (d.suppressed) notes.push(t('st_suppressed', { k: d.k }));
  if (dims.includes('skill')) notes.push(t('st_skill_note'));
  // read from a standby (postgres.read_dsn) or a cached answer
  // (console.stats_cache_ms): how far behind the numbers may be
  const lag = typeof d.lag_s === 'number'
    ? h('p', { class: 'muted', id: 'stat-lag' },
      d.lag_s < 1 ? t('st_lag_none') : t('st_lag', { s: num(Math.round(d.lag_s)) }))
    : null;
  const total = h('p', { class: 'stat-total' }, t('st_total'), ' ', h('strong', { id: 'stat-total' }, count(d.total)));
  let table;
  let chartRows;
  if (dims.length === 1) {
    const cells = d.cells || [];
    chartRows = cells.map((c) => [valueName(dims[0], c[dims[0]]), c.n]);
    table = h('table', { class: 'stats' },
      h('caption', { class: 'sr-only' }, t('st_title')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t(`st_dim_${dims[0]}`)), h('th', { scope: 'col' }, t('st_n')))),
      h('tbody', {}, cells.map((c) => h('tr', {},
        h('th', { scope: 'row' }, valueName(dims[0], c[dims[0]])),
        h('td', { class: 'num' }, count(c.n))))));
  } else {
    const [a, b] = dims;
    const rowTotals = (d.totals || []).filter((x) => x[a] !== undefined && x[b] === undefined);
    const colTotals = (d.totals || []).filter((x) => x[b] !== undefined && x[a] === undefined);
    const cell = new Map((d.cells || []).map((c) => [`${c[a]}\u0000${c[b]}`, c.n]));
    chartRows = rowTotals.map((r) => [valueName(a, r[a]), r.n]);
    table = h('table', { class: 'stats' },
      h('caption', { class: 'sr-only' }, t('st_title')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, `${t(`st_dim_${a}`)} \\ ${t(`st_dim_${b}`)}`),
        colTotals.map((c) => h('th', { scope: 'col' }, valueName(b, c[b]))),
        h('th', { scope: 'col' }, t('st_total')),
        days ? h('th', { scope: 'col' }, t('st_median_days')) : null)),
      h('tbody', {}, rowTotals.map((r) => {
        const dd = days && (days.districts || []).find((x) => x.district === r[a]);
        return h('tr', {},
          h('th', { scope: 'row' }, valueName(a, r[a])),
          colTotals.map((c) => h('td', { class: 'num' }, count(cell.get(`${r[a]}\u0000${c[b]}`) ?? 0))),
          h('td', { class: 'num total' }, count(r.n)),
          days ? h('td', { class: 'num' }, dd && dd.median_days !== null ? num(Math.round(dd.median_days * 10) / 10) : '–') : null);
      })),
      h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, t('st_total')),
        colTotals.map((c) => h('td', { class: 'num total' }, count(c.n))),
        h('td', { class: 'num total' }, count(d.total)),
        days ? h('td', {}) : null)));
  }
  main.replaceChildren(
    h('h1', {}, t('st_title')),
    form,
    total,
    ...notes.map((n) => h('p', { class: 'muted' }, n)),
    ...(lag ? [lag] : []),
    h('div', { class: 'buttons' }, download, dict({ kind: 'aggregate', dims: view })),
    ...(records ? [records] : []),
    h('p', { class: 'muted indicators' }, t('st_indicators'), ' ',
      ...[['skills_supply', 'st_ind_skills'], ['destination_reason_year', 'st_ind_returns']].flatMap(([id, k], i) => [
        i ? ' · ' : '', t(k), ': ',
        h('a', { href: `/api/indicators/${id}.csv`, download: '' }, 'SDMX-CSV'), ', ',
        h('a', { href: `/api/indicators/${id}.json`, download: '' }, 'JSON'), ', ',
        h('a', { href: `/api/export/dictionary.csv?kind=${id}`, download: '' }, t('st_dictionary'))])),
    h('figure', { class: 'chart' }, bars(chartRows)),
    h('div', { class: 'scroll' }, table));
}
