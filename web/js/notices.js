// notices.js -- programme notices by SMS (docs/notices.md): the list
// (#/notices?state=), and one notice (#/notice/ID) with what may be done
// to it now (submit, approve with the vetting reference, pause, resume,
// cancel) and its report: recipients by state, delivery rate, failures by
// reason, opt-outs within 72 h, interested people with their CSV.  While a
// notice is being sent the report is asked for again every few seconds.
// Composing is compose.js.

import { h, field, select } from './dom.js';
import { t, num, when } from './i18n.js';
import { get, post, me } from './api.js';
import { loadLists, name } from './lists.js';
import { dialog, toast, errorText, go } from './ui.js';

export const STATES = ['draft', 'submitted', 'approved', 'sending', 'paused', 'completed', 'cancelled'];
// Recipient states in the order a message goes through them.
export const RSTATES = ['queued', 'claimed', 'accepted', 'submitted', 'buffered', 'delivered', 'expired', 'undelivered', 'rejected', 'failed', 'unknown', 'skipped', 'cancelled'];
const LIVE = new Set(['approved', 'sending', 'paused']);
const REFRESH_MS = 3000;

export function stateBadge(state) {
  return h('span', { class: `badge nt-${state}` }, t(`nt_s_${state}`));
}

function title(n) {
  const p = n.programme && typeof n.programme === 'object' ? n.programme : n;
  const bn = typeof n.programme === 'string' ? n.programme : p.title_bn;
  const en = typeof n.programme === 'string' ? n.programme_en : p.title_en;
  return (document.documentElement.lang === 'en' && en) || bn || '';
}

// A reason code (skipped: opted_out; failed: http_503; undelivered: the
// receipt's stat, UNDELIV ...) in words when there are words for it.
export function whyText(why) {
  const key = `nt_why_${String(why).toLowerCase()}`;
  const s = t(key);
  return s === key ? String(why) : s;
}

function sum(counts, keys) {
  return keys.reduce((a, k) => a + (Number(counts && counts[k]) || 0), 0);
}

// ---- the list --------------------------------------------------------------

async function renderList(main, ctx) {
  const state = ctx.params.get('state') || '';
  await loadLists();
  const d = await get('notices', { state });
  if (!ctx.isCurrent()) return;
  const filter = select({ id: 'nt-state', name: 'state' }, [['', t('all')], ...STATES.map((s) => [s, t(`nt_s_${s}`)])], state);
  filter.addEventListener('change', () => go(filter.value ? `#/notices?state=${filter.value}` : '#/notices'));
  const items = d.items || [];
  const body = h('tbody', {}, items.map((n) => {
    const c = n.counts || {};
    return h('tr', { 'data-id': n.id },
      h('th', { scope: 'row', 'data-label': t('nt_c_notice') }, h('a', { href: `#/notice/${n.id}` }, `#${num(n.id)} ${title(n)}`)),
      h('td', { 'data-label': t('nt_c_state') }, stateBadge(n.state), n.paused_why ? h('span', { class: 'muted small' }, ` ${whyText(n.paused_why)}`) : null),
      h('td', { 'data-label': t('nt_kind') }, t(`nt_k_${n.kind}`)),
      h('td', { 'data-label': t('nt_reply_code') }, h('span', { class: 'mono' }, n.reply_code)),
      h('td', { 'data-label': t('nt_districts') }, (n.districts || []).length ? n.districts.map((x) => name('districts', x)).join(', ') : t('nt_everywhere')),
      h('td', { 'data-label': t('nt_c_audience') }, n.audience_size === null || n.audience_size === undefined ? '' : num(n.audience_size)),
      h('td', { 'data-label': t('nt_r_delivered') }, num(c.delivered || 0)),
      h('td', { 'data-label': t('nt_c_created') }, when(n.created_at), h('br'), h('span', { class: 'muted small' }, n.author || '')));
  }));
  const table = h('table', { class: 'queue notices' },
    h('caption', { class: 'sr-only' }, t('nt_list_title')),
    h('thead', {}, h('tr', {}, ['nt_c_notice', 'nt_c_state', 'nt_kind', 'nt_reply_code', 'nt_districts', 'nt_c_audience', 'nt_r_delivered', 'nt_c_created']
      .map((k) => h('th', { scope: 'col' }, t(k))))),
    body);
  main.replaceChildren(
    h('h1', {}, t('nt_list_title')),
    h('div', { class: 'buttons' }, h('a', { class: 'button', href: '#/compose', id: 'nt-new' }, t('nt_new'))),
    h('div', { class: 'filters' }, field(t('nt_c_state'), filter)),
    items.length ? h('div', { class: 'scroll' }, table) : h('p', { class: 'muted' }, t('none_found')));
}

// ---- one notice --------------------------------------------------------------

function dl(pairs) {
  return h('dl', { class: 'answers' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, Array.isArray(v) ? v.join(', ') : v)]));
}

function audienceList(a) {
  const L = (list, codes) => (codes || []).map((c) => name(list, c));
  return dl([
    ['nt_districts', (a.districts || []).length ? L('districts', a.districts) : t('nt_everywhere')],
    ['nt_sexes', (a.sexes || []).map((s) => t(`sex_${s}`))],
    ['nt_age', a.age_min !== null || a.age_max !== null ? `${a.age_min === null ? '' : num(a.age_min)}–${a.age_max === null ? '' : num(a.age_max)}` : ''],
    ['nt_countries', L('countries', a.countries)],
    ['nt_skills', L('skills', a.skills)],
    ['nt_education_min', a.education_min ? name('education', a.education_min) : ''],
    ['nt_return_years', a.return_year_min !== null || a.return_year_max !== null ? `${a.return_year_min === null ? '' : num(a.return_year_min)}–${a.return_year_max === null ? '' : num(a.return_year_max)}` : ''],
    ['nt_needs', L('needs', a.needs)],
    ['nt_langs', (a.langs || []).map((l) => t(`nt_lang_${l}`))],
    ['nt_statuses', (a.statuses || []).map((s) => t(`st_${s}`))],
    ['nt_recent_days', a.recent_days === null || a.recent_days === undefined ? '' : num(a.recent_days)],
  ]);
}

// The report: recipients by state, delivery rate, failures, opt-outs,
// interested people.
function report(n) {
  const c = n.counts || {};
  const total = Object.values(c).reduce((a, b) => a + Number(b || 0), 0);
  const rows = RSTATES.filter((s) => c[s]).map((s) => h('tr', { 'data-state': s },
    h('th', { scope: 'row' }, t(`nt_r_${s}`)), h('td', { class: 'num' }, num(c[s]))));
  const reasons = Object.entries(n.reasons || {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => {
    const [st, why] = k.split(':');
    return h('tr', { 'data-reason': k }, h('th', { scope: 'row' }, `${t(`nt_r_${st}`)}: ${whyText(why)}`), h('td', { class: 'num' }, num(v)));
  });
  const rate = n.delivery_rate === null || n.delivery_rate === undefined ? '–' : `${num((Number(n.delivery_rate) * 100).toFixed(1))} %`;
  const done = sum(c, ['delivered', 'expired', 'undelivered', 'rejected', 'failed', 'unknown', 'skipped', 'cancelled']);
  const csv = h('a', { class: 'button secondary', id: 'nt-csv', href: `/api/notices/${n.id}/interested.csv`, download: `interested-${n.id}.csv` }, t('nt_csv'));
  return h('section', { class: 'card', id: 'nt-report', 'aria-labelledby': 'nt-report-h' },
    h('h2', { id: 'nt-report-h' }, t('nt_report')),
    h('div', { class: 'stats-row' },
      h('p', {}, h('strong', {}, t('nt_audience')), ' ', h('span', { id: 'nt-total' }, num(total))),
      h('p', {}, h('strong', {}, t('nt_final')), ' ', h('span', { id: 'nt-final' }, num(done))),
      h('p', {}, h('strong', {}, t('nt_rate')), ' ', h('span', { id: 'nt-rate' }, rate)),
      h('p', {}, h('strong', {}, t('nt_optouts')), ' ', h('span', { id: 'nt-optouts' }, num(n.optouts_72h || 0))),
      h('p', {}, h('strong', {}, t('nt_interested')), ' ', h('span', { id: 'nt-interested' }, num(n.interested || 0)))),
    total ? h('table', { class: 'counts', id: 'nt-counts' }, h('caption', {}, t('nt_by_state')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('nt_c_state')), h('th', { scope: 'col' }, t('nt_c_people')))),
      h('tbody', {}, rows)) : h('p', { class: 'muted' }, t('nt_no_recipients')),
    reasons.length ? h('table', { class: 'counts', id: 'nt-reasons' }, h('caption', {}, t('nt_by_reason')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('nt_reason')), h('th', { scope: 'col' }, t('nt_c_people')))),
      h('tbody', {}, reasons)) : null,
    h('div', { class: 'buttons' }, csv),
    h('p', { class: 'muted small' }, t('nt_csv_note')));
}

// Who a draft or submitted notice would reach now (GET .../preview): what
// the approver is shown before the audience is frozen.
async function previewCard(id) {
  const d = await get(`notices/${encodeURIComponent(id)}/preview`);
  const rows = Object.entries(d.by_district || {})
    .sort((x, y) => (Number(y[1]) || 0) - (Number(x[1]) || 0))
    .map(([k, v]) => h('tr', { 'data-district': k }, h('th', { scope: 'row' }, name('districts', k)), h('td', { class: 'num' }, v === '<5' ? t('nt_lt5') : num(v))));
  return h('section', { class: 'card', id: 'nt-now', 'aria-labelledby': 'nt-now-h' },
    h('h2', { id: 'nt-now-h' }, t('nt_preview')),
    h('p', { class: 'big' }, h('strong', {}, t('nt_eligible')), ' ', h('span', { id: 'nt-eligible' }, num(d.eligible ?? 0))),
    h('ul', { class: 'plain' }, Object.entries(d.skipped || {}).map(([k, v]) => h('li', { 'data-why': k }, `${whyText(k)}: ${num(v)}`))),
    rows.length ? h('table', { class: 'counts' }, h('caption', {}, t('nt_by_district')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('nt_districts')), h('th', { scope: 'col' }, t('nt_c_people')))), h('tbody', {}, rows)) : null,
    d.parts_total === undefined ? null : h('p', {}, t('nt_cost', { parts: num(d.parts_total), taka: num((Number(d.cost_paisa || 0) / 100).toFixed(2)) })));
}

function actions(n, reload) {
  const user = me() || {};
  const mine = n.author === user.username;
  const out = [];
  const act = (id, key, path, opts = {}) => h('button', {
    type: 'button', id, class: opts.danger ? 'danger' : opts.secondary ? 'secondary' : '',
    onclick: () => dialog({
      title: t(`${key}_title`),
      body: [h('p', {}, t(`${key}_body`)), ...(opts.body ? opts.body() : [])],
      submitLabel: t(key),
      danger: opts.danger,
      onSubmit: async (form) => {
        try {
          return await post(`notices/${n.id}/${path}`, opts.payload ? opts.payload(form) : {});
        } catch (e) {
          if (e.code === 'four_eyes') throw t('nt_four_eyes');
          if (e.code === 'vetting_required') throw t('nt_vetting_required');
          if (e.code === 'invalid_notice' && e.body && e.body.message) throw `${t('nt_invalid')} ${e.body.message}`;
          throw e;
        }
      },
    }).then((r) => {
      if (!r) return;
      toast(t('nt_now', { state: t(`nt_s_${r.data.state}`) }));
      reload();
    }),
  }, t(key));
  if (n.state === 'draft' && mine) out.push(h('a', { class: 'button secondary', href: `#/compose/${n.id}`, id: 'nt-edit' }, t('nt_edit')));
  if (n.state === 'draft') out.push(act('nt-submit', 'nt_a_submit', 'submit'));
  if (n.state === 'submitted' && user.role === 'admin' && !mine) {
    out.push(act('nt-approve', 'nt_a_approve', 'approve', {
      body: () => [field(t('nt_vetting'), h('input', { name: 'vetting_ref', id: 'nt-vetting', maxlength: 100, autocomplete: 'off' }), t('nt_vetting_help'))],
      payload: (form) => ({ vetting_ref: form.elements.vetting_ref.value.trim() }),
    }));
  }
  if (n.state === 'submitted' && mine) out.push(h('p', { class: 'note', id: 'nt-four-eyes' }, t('nt_four_eyes')));
  if (n.state === 'approved' || n.state === 'sending') out.push(act('nt-pause', 'nt_a_pause', 'pause', { secondary: true }));
  if (n.state === 'paused') out.push(act('nt-resume', 'nt_a_resume', 'resume'));
  if (!['completed', 'cancelled'].includes(n.state)) out.push(act('nt-cancel', 'nt_a_cancel', 'cancel', { danger: true }));
  return h('div', { class: 'buttons', id: 'nt-actions' }, out);
}

async function renderOne(main, ctx) {
  const id = ctx.arg;
  await loadLists();
  let n = await get(`notices/${encodeURIComponent(id)}`);
  if (!ctx.isCurrent()) return;
  const p = n.programme || {};
  const reportBox = h('div', {}, report(n));
  const now = ['draft', 'submitted'].includes(n.state) ? await previewCard(n.id).catch((e) => h('p', { class: 'error' }, errorText(e))) : null;
  if (!ctx.isCurrent()) return;
  const stateEl = h('span', { id: 'nt-state' }, stateBadge(n.state));
  const why = h('span', { class: 'muted', id: 'nt-why' }, n.paused_why ? ` ${whyText(n.paused_why)}` : '');
  const reload = () => ctx.rerender();
  const text = (lang) => {
    const sms = n[`sms_${lang}`];
    const tpl = n[`text_${lang}`];
    if (!sms && !tpl) return null;
    return h('div', { class: 'field' }, h('h3', {}, t(`nt_text_${lang}`)),
      h('pre', { class: 'sms', id: `nt-sms-${lang}`, lang }, sms || tpl),
      sms && n[`parts_${lang}`] ? h('small', { class: 'help' }, t('nt_parts', { n: num(n[`parts_${lang}`]) })) : null);
  };
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/notices' }, t('nt_back'))),
    h('h1', {}, t('nt_title', { id: num(n.id), title: title(n) })),
    h('p', {}, stateEl, why),
    actions(n, reload),
    now,
    h('section', { class: 'card' }, h('h2', {}, t('nt_programme')), dl([
      ['nt_kind', t(`nt_k_${p.kind}`)], ['nt_title_bn', p.title_bn], ['nt_title_en', p.title_en],
      ['nt_provider', p.provider], ['nt_place', p.place], ['nt_deadline', p.deadline ? when(p.deadline, true) : ''],
      ['nt_phone', p.phone], ['nt_reply_code', p.reply_code],
      ['nt_author', n.author], ['nt_approver', n.approver], ['nt_vetting', n.vetting_ref],
      ['nt_send_after', n.send_after ? when(n.send_after) : ''], ['nt_hourly_cap', n.hourly_cap ? num(n.hourly_cap) : ''],
    ])),
    h('section', { class: 'card' }, h('h2', {}, t('nt_texts')), text('bn'), text('en')),
    h('section', { class: 'card' }, h('h2', {}, t('nt_audience_h')), audienceList(n.audience || {})),
    reportBox);
  // watch: the report again while it is being sent
  const tick = async () => {
    if (!ctx.isCurrent() || !LIVE.has(n.state)) return;
    try {
      const m = await get(`notices/${encodeURIComponent(id)}`);
      if (!ctx.isCurrent()) return;
      if (m.state !== n.state) {
        n = m;
        ctx.rerender();
        return;
      }
      n = m;
      reportBox.replaceChildren(report(n));
      why.textContent = n.paused_why ? ` ${whyText(n.paused_why)}` : '';
    } catch (e) {
      if (!ctx.isCurrent()) return;
      toast(errorText(e), 'warn');
    }
    setTimeout(tick, REFRESH_MS);
  };
  if (LIVE.has(n.state)) setTimeout(tick, REFRESH_MS);
}

export async function render(main, ctx) {
  if (ctx.page === 'notice' && ctx.arg) return renderOne(main, ctx);
  return renderList(main, ctx);
}
