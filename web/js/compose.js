// compose.js -- compose a programme notice (#/compose, or #/compose/ID for
// a draft): the programme, the texts (Bangla required, English optional,
// {code} {deadline} {phone}), the audience and the send window.  As soon as
// the programme's title and reply code, the Bangla text and (for an
// officer) a district are given, the draft is saved (POST /api/notices,
// then PUT on each change, a moment after the last keystroke) and the
// preview asked for: how many people it reaches, by district (small counts
// "<5"), who is left out and why, both texts as sent with the STOP footer,
// parts and cost.  Submit sends it for approval.

import { h, field, select } from './dom.js';
import { t, num } from './i18n.js';
import { get, post, call, me } from './api.js';
import { loadLists, options, name } from './lists.js';
import { toast, errorText, go } from './ui.js';
import { whyText } from './notices.js';

const KINDS = ['training', 'job', 'loan', 'other'];
const SEXES = ['m', 'f', 'x'];
const LANGS = ['bn', 'en'];
const STATUSES = ['verified', 'needs_info', 'pending'];
const WAIT_MS = 500;

let seq = 0;
// A group of checkboxes in a fieldset with a legend; .values() the checked.
function checks(legend, id, opts, chosen) {
  const set = new Set(chosen || []);
  const boxes = opts.map(([v, l]) => {
    const box = h('input', { type: 'checkbox', name: id, value: v, id: `${id}-${v}`, checked: set.has(v) });
    return h('label', { class: 'check', for: box.id }, box, ' ', l);
  });
  const fs = h('fieldset', { class: 'checks', id }, h('legend', {}, legend), h('div', { class: 'check-grid' }, boxes));
  fs.values = () => [...fs.querySelectorAll('input:checked')].map((b) => b.value);
  return fs;
}

function input(attrs) {
  return h('input', { id: `c${++seq}`, ...attrs });
}

const intOrNull = (s) => (String(s).trim() === '' ? null : Number.parseInt(s, 10));

export async function render(main, ctx) {
  await loadLists();
  const user = me() || {};
  const admin = user.role === 'admin';
  let n = null;
  if (ctx.arg) {
    n = await get(`notices/${encodeURIComponent(ctx.arg)}`);
    if (n.state !== 'draft') {
      go(`#/notice/${n.id}`);
      return;
    }
  }
  if (!ctx.isCurrent()) return;
  let id = n ? n.id : null;
  const p = (n && n.programme) || {};
  const a = (n && n.audience) || {};

  // the form
  const f = {
    kind: select({ id: 'nt-kind', name: 'kind' }, KINDS.map((k) => [k, t(`nt_k_${k}`)]), p.kind || 'training'),
    title_bn: input({ name: 'title_bn', id: 'nt-title-bn', required: true, maxlength: 200, lang: 'bn', value: p.title_bn || '' }),
    title_en: input({ name: 'title_en', id: 'nt-title-en', maxlength: 200, lang: 'en', value: p.title_en || '' }),
    provider: input({ name: 'provider', id: 'nt-provider', maxlength: 200, value: p.provider || '' }),
    place: input({ name: 'place', id: 'nt-place', maxlength: 200, value: p.place || '' }),
    deadline: input({ name: 'deadline', id: 'nt-deadline', type: 'date', value: p.deadline || '' }),
    phone: input({ name: 'phone', id: 'nt-phone', type: 'tel', inputmode: 'tel', pattern: '\\+?[0-9]{3,15}', value: p.phone || '' }),
    reply_code: input({ name: 'reply_code', id: 'nt-code', required: true, pattern: '[A-Za-z][A-Za-z0-9]{1,7}', maxlength: 8, autocomplete: 'off', spellcheck: 'false', value: p.reply_code || '' }),
    text_bn: h('textarea', { name: 'text_bn', id: 'nt-text-bn', required: true, rows: 4, lang: 'bn' }),
    text_en: h('textarea', { name: 'text_en', id: 'nt-text-en', rows: 4, lang: 'en' }),
    districts: checks(t('nt_districts'), 'nt-districts', admin ? options('districts') : options('districts', user.districts), a.districts),
    sexes: checks(t('nt_sexes'), 'nt-sexes', SEXES.map((s) => [s, t(`sex_${s}`)]), a.sexes),
    age_min: input({ name: 'age_min', id: 'nt-age-min', type: 'number', min: 0, max: 120, inputmode: 'numeric', value: a.age_min ?? '' }),
    age_max: input({ name: 'age_max', id: 'nt-age-max', type: 'number', min: 0, max: 120, inputmode: 'numeric', value: a.age_max ?? '' }),
    countries: checks(t('nt_countries'), 'nt-countries', options('countries'), a.countries),
    skills: checks(t('nt_skills'), 'nt-skills', options('skills'), a.skills),
    education_min: select({ id: 'nt-education', name: 'education_min' }, [['', t('any')], ...options('education')], a.education_min || ''),
    return_year_min: input({ name: 'return_year_min', id: 'nt-ry-min', type: 'number', min: 1970, max: 2100, inputmode: 'numeric', value: a.return_year_min ?? '' }),
    return_year_max: input({ name: 'return_year_max', id: 'nt-ry-max', type: 'number', min: 1970, max: 2100, inputmode: 'numeric', value: a.return_year_max ?? '' }),
    needs: checks(t('nt_needs'), 'nt-needs', options('needs'), a.needs),
    langs: checks(t('nt_langs'), 'nt-langs', LANGS.map((l) => [l, t(`nt_lang_${l}`)]), a.langs),
    statuses: admin ? checks(t('nt_statuses'), 'nt-statuses', STATUSES.map((s) => [s, t(`st_${s}`)]), a.statuses || ['verified']) : null,
    recent_days: input({ name: 'recent_days', id: 'nt-recent', type: 'number', min: 0, max: 365, inputmode: 'numeric', value: a.recent_days ?? 30 }),
    hourly_cap: input({ name: 'hourly_cap', id: 'nt-hourly', type: 'number', min: 1, inputmode: 'numeric', value: n && n.hourly_cap ? n.hourly_cap : '' }),
    send_after: input({ name: 'send_after', id: 'nt-after', type: 'datetime-local', value: n && n.send_after ? localInput(n.send_after) : '' }),
  };
  f.text_bn.value = (n && n.text_bn) || '';
  f.text_en.value = (n && n.text_en) || '';

  function body() {
    const prog = { kind: f.kind.value, title_bn: f.title_bn.value.trim(), reply_code: f.reply_code.value.trim().toUpperCase() };
    for (const k of ['title_en', 'provider', 'place', 'deadline', 'phone']) if (f[k].value.trim()) prog[k] = f[k].value.trim();
    const aud = {};
    for (const k of ['districts', 'sexes', 'countries', 'skills', 'needs', 'langs']) {
      const v = f[k].values();
      if (v.length) aud[k] = v;
    }
    if (f.statuses) aud.statuses = f.statuses.values();
    for (const k of ['age_min', 'age_max', 'return_year_min', 'return_year_max']) {
      const v = intOrNull(f[k].value);
      if (v !== null && !Number.isNaN(v)) aud[k] = v;
    }
    if (f.education_min.value) aud.education_min = f.education_min.value;
    const b = { programme: prog, text_bn: f.text_bn.value.trim(), audience: aud };
    if (f.text_en.value.trim()) b.text_en = f.text_en.value.trim();
    const rd = intOrNull(f.recent_days.value);
    if (rd !== null && !Number.isNaN(rd)) b.recent_days = rd;
    const hc = intOrNull(f.hourly_cap.value);
    if (hc) b.hourly_cap = hc;
    if (f.send_after.value) b.send_after = new Date(f.send_after.value).toISOString();
    return b;
  }

  // What is still missing before the draft can be saved ('' when none).
  function missing(b) {
    if (!b.programme.title_bn) return t('nt_need_title');
    if (!/^[A-Z][A-Z0-9]{1,7}$/.test(b.programme.reply_code)) return t('nt_need_code');
    if (!b.text_bn) return t('nt_need_text');
    if (!admin && !(b.audience.districts || []).length) return t('nt_need_district');
    if (f.statuses && !b.audience.statuses.length) return t('nt_need_status');
    return '';
  }

  // the preview panel
  const pv = {
    status: h('p', { id: 'nt-save', class: 'muted', role: 'status' }, ''),
    count: h('span', { id: 'nt-eligible' }, '–'),
    skipped: h('ul', { id: 'nt-skipped', class: 'plain' }),
    districts: h('tbody', { id: 'nt-by-district' }),
    sms_bn: h('pre', { class: 'sms', id: 'nt-pv-bn', lang: 'bn' }),
    sms_en: h('pre', { class: 'sms', id: 'nt-pv-en', lang: 'en' }),
    parts: h('p', { id: 'nt-parts' }),
    cost: h('p', { id: 'nt-cost' }),
    error: h('p', { class: 'error', role: 'alert', hidden: true, id: 'nt-error' }),
  };
  const preview = h('section', { class: 'card preview', id: 'nt-preview', 'aria-labelledby': 'nt-pv-h', 'aria-live': 'polite' },
    h('h2', { id: 'nt-pv-h' }, t('nt_preview')),
    pv.status, pv.error,
    h('p', { class: 'big' }, h('strong', {}, t('nt_eligible')), ' ', pv.count),
    pv.skipped,
    h('table', { class: 'counts' }, h('caption', {}, t('nt_by_district')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('nt_districts')), h('th', { scope: 'col' }, t('nt_c_people')))), pv.districts),
    h('h3', {}, t('nt_text_bn')), pv.sms_bn,
    h('h3', {}, t('nt_text_en')), pv.sms_en,
    pv.parts, pv.cost);

  function showPreview(d) {
    pv.count.textContent = num(d.eligible ?? 0);
    pv.skipped.replaceChildren(...Object.entries(d.skipped || {}).map(([k, v]) => h('li', { 'data-why': k }, `${whyText(k)}: ${num(v)}`)));
    pv.districts.replaceChildren(...Object.entries(d.by_district || {})
      .sort((x, y) => (Number(y[1]) || 0) - (Number(x[1]) || 0))
      .map(([k, v]) => h('tr', { 'data-district': k }, h('th', { scope: 'row' }, name('districts', k)), h('td', { class: 'num' }, v === '<5' ? t('nt_lt5') : num(v)))));
    if (d.render_error) {
      pv.error.textContent = `${t('nt_invalid')} ${d.render_error}`;
      pv.error.hidden = false;
    }
    pv.sms_bn.textContent = d.sms_bn || '';
    pv.sms_en.textContent = d.sms_en || t('nt_no_en');
    const parts = [];
    if (d.parts_bn) parts.push(t('nt_parts_bn', { n: num(d.parts_bn) }));
    if (d.parts_en) parts.push(t('nt_parts_en', { n: num(d.parts_en), coding: d.coding_en === 'gsm7' ? 'GSM-7' : 'UCS-2' }));
    pv.parts.textContent = parts.join(' · ');
    pv.cost.textContent = d.parts_total === undefined ? '' : t('nt_cost', {
      parts: num(d.parts_total),
      taka: num((Number(d.cost_paisa || 0) / 100).toFixed(2)),
    });
  }

  let timer = null;
  let busy = null;
  let again = false;
  let saved = '';
  async function save() {
    if (busy) {
      again = true;
      return busy;
    }
    const b = body();
    const why = missing(b);
    pv.error.hidden = true;
    if (why) {
      pv.status.textContent = why;
      return null;
    }
    const text = JSON.stringify(b);
    if (text === saved && id) return null;
    busy = (async () => {
      try {
        pv.status.textContent = t('nt_saving');
        if (id) {
          await call('PUT', `notices/${id}`, { body: b });
        } else {
          const r = await post('notices', b);
          id = r.data.id;
          // the address names the draft from now on (no new page)
          history.replaceState(null, '', `#/compose/${id}`);
        }
        saved = text;
        if (!ctx.isCurrent()) return;
        const d = await get(`notices/${id}/preview`);
        if (!ctx.isCurrent()) return;
        showPreview(d);
        pv.status.textContent = t('nt_saved', { id: num(id) });
        submit.disabled = false;
      } catch (e) {
        if (!ctx.isCurrent()) return;
        pv.status.textContent = '';
        pv.error.textContent = e.code === 'invalid_notice' && e.body && e.body.message ? `${t('nt_invalid')} ${e.body.message}` : errorText(e);
        pv.error.hidden = false;
      }
    })();
    await busy;
    busy = null;
    if (again) {
      again = false;
      return save();
    }
    return null;
  }
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(save, WAIT_MS);
  };

  const submit = h('button', { type: 'submit', id: 'nt-submit', disabled: !id }, t('nt_a_submit'));
  const form = h('form', { class: 'compose', id: 'nt-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, t('nt_programme')),
      h('div', { class: 'grid' },
        field(t('nt_kind'), f.kind),
        field(t('nt_title_bn'), f.title_bn),
        field(t('nt_title_en'), f.title_en),
        field(t('nt_provider'), f.provider),
        field(t('nt_place'), f.place),
        field(t('nt_deadline'), f.deadline),
        field(t('nt_phone'), f.phone),
        field(t('nt_reply_code'), f.reply_code, t('nt_reply_code_help')))),
    h('fieldset', {}, h('legend', {}, t('nt_texts')),
      field(t('nt_text_bn'), f.text_bn, t('nt_text_help')),
      field(t('nt_text_en_opt'), f.text_en, t('nt_text_help'))),
    h('fieldset', {}, h('legend', {}, t('nt_audience_h')),
      h('p', { class: 'help' }, t('nt_audience_help')),
      f.districts, f.sexes,
      h('div', { class: 'grid' },
        field(t('nt_age_min'), f.age_min), field(t('nt_age_max'), f.age_max),
        field(t('nt_education_min'), f.education_min),
        field(t('nt_ry_min'), f.return_year_min), field(t('nt_ry_max'), f.return_year_max)),
      h('details', {}, h('summary', {}, t('nt_more')), f.countries, f.skills, f.needs, f.langs),
      f.statuses,
      field(t('nt_recent_days'), f.recent_days, t('nt_recent_help'))),
    h('fieldset', {}, h('legend', {}, t('nt_window')),
      h('p', { class: 'help' }, t('nt_window_help')),
      h('div', { class: 'grid' },
        field(t('nt_send_after'), f.send_after),
        field(t('nt_hourly_cap'), f.hourly_cap, t('nt_hourly_help')))),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', class: 'secondary', id: 'nt-save-now', onclick: () => save() }, t('nt_save')),
      submit));
  form.addEventListener('input', soon);
  form.addEventListener('change', soon);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    await save();
    if (!id || missing(body()) || !pv.error.hidden) return;
    submit.disabled = true;
    try {
      await post(`notices/${id}/submit`);
      toast(t('nt_now', { state: t('nt_s_submitted') }));
      go(`#/notice/${id}`);
    } catch (e) {
      pv.error.textContent = e.code === 'invalid_notice' && e.body && e.body.message ? `${t('nt_invalid')} ${e.body.message}` : errorText(e);
      pv.error.hidden = false;
      submit.disabled = false;
    }
  });

  main.replaceChildren(
    h('p', {}, h('a', { href: id ? `#/notice/${id}` : '#/notices' }, t('nt_back'))),
    h('h1', {}, id ? t('nt_edit_title', { id: num(id) }) : t('nt_compose_title')),
    h('div', { class: 'compose-layout' }, form, preview));
  if (id) {
    // a draft as it is: its preview, nothing saved yet
    saved = JSON.stringify(body());
    try {
      showPreview(await get(`notices/${id}/preview`));
      pv.status.textContent = t('nt_saved', { id: num(id) });
    } catch (e) {
      pv.error.textContent = errorText(e);
      pv.error.hidden = false;
    }
  } else {
    pv.status.textContent = missing(body());
  }
}

// An ISO time as the value of a datetime-local input (the browser's zone).
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const z = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}T${z(d.getHours())}:${z(d.getMinutes())}`;
}
