// record.js -- one record: every answer with its label, the masked ID
// number (revealed on request, with a reason, audited), the duplicate
// panel (same ID number in any district: reference, district and status
// only), the submissions and the activity (decisions, corrections, SMS with
// delivery state); and the decisions.  Every decision carries the version
// the officer saw (If-Match); a 409 shows the record as it is now.

import { h, field, select } from './dom.js';
import { t, num, when, label } from './i18n.js';
import { get, post, ApiError } from './api.js';
import { loadLists, name, items, options } from './lists.js';
import { dialog, toast, errorText } from './ui.js';
import { statusBadge } from './queue.js';

const REJECT = ['duplicate', 'not_returnee', 'invalid_id', 'unreachable', 'test', 'other'];
const NEEDS_INFO = ['id_unclear', 'answers_unclear', 'documents', 'other'];

// Reason codes: from config (GET /api/lists) when it names them, else these.
function reasonOptions(list, fallback, prefix) {
  const its = items(list);
  if (its.length) return its.map((i) => [i.code, label(i, i.code)]);
  return fallback.map((c) => [c, t(`${prefix}${c}`)]);
}

// The answers as the API gives them ({field: value}, a value being a
// {code, en, bn} label, a list of them, or plain text or a number) in the
// order of the registration flow, as [{field, code, codes, text}].
const FIELDS = ['name', 'sex', 'birth_year', 'division', 'district', 'country', 'years_abroad', 'return_year', 'reason', 'education', 'skills', 'need'];
const LISTS = { division: 'divisions', district: 'districts', country: 'countries', reason: 'reasons', education: 'education', skills: 'skills', need: 'needs' };
const SEXES = ['m', 'f', 'x'];

function normAnswers(answers) {
  if (Array.isArray(answers)) return answers;
  const out = [];
  const keys = [...FIELDS.filter((f) => f in (answers || {})), ...Object.keys(answers || {}).filter((f) => !FIELDS.includes(f))];
  for (const field of keys) {
    const v = answers[field];
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) out.push({ field, codes: v.map((x) => (x && x.code) || x), text: v.map((x) => label(x, x && x.code)).join(', ') });
    else if (typeof v === 'object') {
      const text = field === 'sex' && v.code ? t(`sex_${v.code}`) : label(v, v.code);
      out.push({ field, code: v.code, text: /^\d+$/.test(text) ? num(text) : text });
    }
    else out.push({ field, code: field === 'name' ? undefined : String(v), text: /^\d+$/.test(String(v)) ? num(v) : String(v) });
  }
  return out;
}

function answerValue(a) {
  if ('text' in a) return a.text;
  if (a.value && typeof a.value === 'object' && !Array.isArray(a.value)) return label(a.value, a.code);
  if (Array.isArray(a.values)) return a.values.map((v) => label(v, v.code)).join(', ');
  if (a.list && a.code) return name(a.list, a.code);
  if (a.label_value) return label(a.label_value, a.code);
  return a.value ?? a.code ?? '';
}

function smsLine(sms) {
  if (!sms || !sms.state) return null;
  const state = sms.state;
  const text = state === 'held' ? t('sms_held', { at: when(sms.at) }) : t(`sms_${state}`);
  return h('span', { class: `sms sms-${state}` }, t('sms_state', { state: text }));
}

function section(title, ...content) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...content);
}

export async function render(main, ctx) {
  const ref = ctx.arg;
  await loadLists();
  let rec;
  try {
    rec = await get(`records/${encodeURIComponent(ref)}`);
  } catch (e) {
    if (!ctx.isCurrent()) return;
    main.replaceChildren(
      h('p', {}, h('a', { href: '#/queue' }, t('back_to_queue'))),
      h('h1', {}, t('record_title', { ref })),
      h('p', { class: 'error', role: 'alert' }, errorText(e)));
    return;
  }
  if (!ctx.isCurrent()) return;
  show(main, ctx, rec);
}

function show(main, ctx, rec) {
  const ref = rec.ref;
  const answers = normAnswers(rec.answers);
  const dups = Array.isArray(rec.duplicates) ? rec.duplicates : [];
  const history = Array.isArray(rec.history) ? rec.history : [];
  const activity = Array.isArray(rec.activity) ? rec.activity : [];
  const idBox = h('span', { class: 'mono', id: 'id-number' }, rec.id_masked || '');

  // Re-read the record and show it again (after a decision or a conflict).
  async function reload(message, kind) {
    try {
      const fresh = await get(`records/${encodeURIComponent(ref)}`);
      if (!ctx.isCurrent()) return;
      show(main, ctx, fresh);
    } catch (e) {
      toast(errorText(e), 'error');
      return;
    }
    if (message) toast(message, kind);
  }

  // POST a decision with If-Match; a 409 reloads the record and says so,
  // and resolves false (not null: the dialog turns null into true), so the
  // caller has no decision to report and the conflict message stays.
  async function decide(action, body) {
    try {
      const r = await post(`records/${encodeURIComponent(ref)}/${action}`, body, { 'If-Match': String(rec.version) });
      return r.data;
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        await reload(t('conflict'), 'warn');
        return false;
      }
      throw e;
    }
  }

  function decided(d) {
    if (!d || typeof d !== 'object') return;
    const status = t(`st_${d.status}`);
    const sms = d.sms_at && new Date(d.sms_at) > new Date();
    reload(sms ? t('decided', { status, at: when(d.sms_at) }) : t('decided_now', { status }));
  }

  const buttons = [];
  const open = rec.status === 'pending' || rec.status === 'needs_info';
  if (rec.status === 'pending') {
    buttons.push(h('button', { type: 'button', id: 'act-verify', onclick: () => verifyDialog() }, t('a_verify')));
    buttons.push(h('button', { type: 'button', id: 'act-correct', class: 'secondary', onclick: () => correctDialog() }, t('a_correct')));
    buttons.push(h('button', { type: 'button', id: 'act-needs-info', class: 'secondary', onclick: () => needsInfoDialog() }, t('a_needs_info')));
  }
  if (open) buttons.push(h('button', { type: 'button', id: 'act-reject', class: 'danger', onclick: () => rejectDialog() }, t('a_reject')));
  // the last decision not undone whose SMS is still held can be undone
  // until the SMS leaves
  const lastDecision = [...activity].reverse().find((a) => (a.type || 'decision') === 'decision' && !a.undone_at);
  const held = lastDecision && lastDecision.sms && lastDecision.sms.state === 'held';
  const undoUntil = held ? lastDecision.sms.at : null;
  const canUndo = !!(undoUntil && new Date(undoUntil) > new Date());
  if (canUndo) {
    buttons.push(h('button', {
      type: 'button',
      id: 'act-undo',
      onclick: async () => {
        try {
          const d = await decide('undo', {});
          if (d) reload(t('undone'));
        } catch (e) {
          toast(errorText(e), 'error');
        }
      },
    }, t('a_undo')));
  }
  if (rec.status === 'rejected' && ctx.user.role === 'admin') {
    buttons.push(h('button', { type: 'button', id: 'act-reopen', class: 'secondary', onclick: () => reopenDialog() }, t('a_reopen')));
  }

  function verifyDialog() {
    return dialog({
      title: t('d_verify_title', { ref }),
      body: [h('p', {}, t('d_verify_text'))],
      submitLabel: t('a_verify'),
      onSubmit: () => decide('verify', {}),
    }).then(decided);
  }

  function rejectDialog() {
    const reason = select({ name: 'reason', required: true }, [['', t('choose')], ...reasonOptions('reject_reasons', REJECT, 'r_')]);
    const dupOf = h('input', { name: 'duplicate_of', autocomplete: 'off' });
    const dupField = field(t('duplicate_of'), dupOf);
    dupField.hidden = true;
    reason.addEventListener('change', () => {
      dupField.hidden = !/^duplicate/.test(reason.value);
    });
    const note = h('textarea', { name: 'note', rows: '3', maxlength: '500' });
    return dialog({
      title: t('d_reject_title', { ref }),
      body: [field(t('reason'), reason), dupField, field(t('note'), note)],
      submitLabel: t('a_reject').replace(/…$/, ''),
      danger: true,
      onSubmit: async () => {
        if (!reason.value) {
          reason.focus();
          throw t('required');
        }
        const body = { reason: reason.value };
        if (!dupField.hidden) {
          if (!dupOf.value.trim()) {
            dupOf.focus();
            throw t('required');
          }
          // the code stays "duplicate"; the other reference goes in the note
          body.note = `duplicate_of:${dupOf.value.trim()}`;
        }
        if (note.value.trim()) body.note = body.note ? `${body.note} ${note.value.trim()}` : note.value.trim();
        return decide('reject', body);
      },
    }).then(decided);
  }

  function needsInfoDialog() {
    const reason = select({ name: 'reason', required: true }, [['', t('choose')], ...reasonOptions('needs_info_reasons', NEEDS_INFO, 'ni_')]);
    const note = h('textarea', { name: 'note', rows: '3', maxlength: '500' });
    return dialog({
      title: t('d_needs_info_title', { ref }),
      body: [field(t('reason'), reason), field(t('note'), note)],
      submitLabel: t('confirm'),
      onSubmit: async () => {
        if (!reason.value) {
          reason.focus();
          throw t('required');
        }
        const body = { reason: reason.value };
        if (note.value.trim()) body.note = note.value.trim();
        return decide('needs-info', body);
      },
    }).then(decided);
  }

  function correctDialog() {
    const controls = answers.filter((a) => a.field !== 'name' && (a.field in LISTS || a.field === 'sex' || /year|years/.test(a.field))).map((a) => {
      let c;
      if (a.field === 'sex') {
        c = select({ name: a.field }, SEXES.map((x) => [x, t(`sex_${x}`)]), a.code);
      } else if (a.field in LISTS && items(LISTS[a.field]).length) {
        const multi = Array.isArray(a.codes);
        c = select({ name: a.field, multiple: multi || undefined, size: multi ? '6' : undefined }, options(LISTS[a.field]));
        if (multi) for (const o of c.options) o.selected = a.codes.includes(o.value);
        else c.value = a.code ?? '';
      } else {
        c = h('input', { name: a.field, value: a.code ?? a.text ?? '', inputmode: 'numeric', autocomplete: 'off' });
      }
      c.dataset.initial = multiValue(c);
      return { a, c, f: field(t(`ans_${a.field}`), c) };
    });
    return dialog({
      title: t('d_correct_title', { ref }),
      body: [h('p', { class: 'muted' }, t('d_correct_text')), h('div', { class: 'grid' }, controls.map((x) => x.f))],
      submitLabel: t('save'),
      onSubmit: async () => {
        const fields = {};
        for (const { a, c } of controls) {
          const v = multiValue(c);
          if (v === c.dataset.initial) continue;
          if (c.multiple) fields[a.field] = v.split(',').filter(Boolean);
          else if (/year|years/.test(a.field)) fields[a.field] = Number(v);
          else fields[a.field] = v;
        }
        if (!Object.keys(fields).length) throw t('nothing_changed');
        return decide('correct', { fields });
      },
    }).then(decided);
  }

  function reopenDialog() {
    const reason = h('textarea', { name: 'reason', rows: '3', required: true, maxlength: '500' });
    return dialog({
      title: t('d_reopen_title', { ref }),
      body: [field(t('reason'), reason)],
      onSubmit: async () => {
        if (!reason.value.trim()) {
          reason.focus();
          throw t('required');
        }
        return decide('reopen', { reason: reason.value.trim() });
      },
    }).then(decided);
  }

  function revealDialog() {
    const reason = h('textarea', { name: 'reason', rows: '2', required: true, maxlength: '300' });
    return dialog({
      title: t('d_reveal_title', { ref }),
      body: [h('p', { class: 'muted' }, t('id_masked_note')), field(t('reveal_reason'), reason)],
      submitLabel: t('a_reveal').replace(/…$/, ''),
      onSubmit: async () => {
        if (!reason.value.trim()) {
          reason.focus();
          throw t('required');
        }
        const r = await post(`records/${encodeURIComponent(ref)}/reveal`, { reason: reason.value.trim() });
        const number = r.data.id_number || r.data.number || r.data.nid || r.data.passport || '';
        idBox.textContent = number;
        idBox.classList.add('revealed');
        toast(t('revealed', { number }));
        return r.data;
      },
    });
  }

  const undoNote = canUndo && undoUntil ? h('p', { class: 'note', id: 'undo-note' }, t('undo_until', { at: when(undoUntil) })) : null;
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/queue' }, t('back_to_queue'))),
    h('h1', {}, t('record_title', { ref })),
    h('dl', { class: 'facts' },
      h('dt', {}, t('status')), h('dd', { id: 'rec-status' }, statusBadge(rec.status)),
      h('dt', {}, t('c_district')), h('dd', {}, name('districts', rec.district)),
      rec.phone ? [h('dt', {}, t('phone')), h('dd', { class: 'mono' }, rec.phone)] : null,
      rec.reason ? [h('dt', {}, t('reason')), h('dd', {}, label(rec.reason, rec.reason.code), rec.note ? ` — ${rec.note}` : '')] : null,
      (rec.flags || []).length ? [h('dt', {}, t('c_flags')), h('dd', {}, rec.flags.map((f) => h('span', { class: `flag fl-${f}` }, t(`flag_${f}`))))] : null,
      h('dt', {}, t('registered_at')), h('dd', {}, when(rec.registered_at || rec.created_at)),
      Array.isArray(rec.parts_done) ? [h('dt', {}, t('parts_done')), h('dd', { id: 'rec-parts' }, t('parts_of', { n: num(rec.parts_done.length), of: num(3) }))] : null,
      rec.updated_at ? [h('dt', {}, t('updated_at')), h('dd', {}, when(rec.updated_at))] : null,
      h('dt', {}, t('version')), h('dd', {}, num(rec.version ?? ''))),
    section(t('actions'), undoNote, buttons.length ? h('div', { class: 'buttons' }, buttons) : h('p', { class: 'muted' }, '—')),
    section(t('answers'),
      h('table', { class: 'answers' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('field')), h('th', { scope: 'col' }, t('value')), h('th', { scope: 'col' }, t('code')))),
        h('tbody', {},
          answers.filter((a) => !/^(nid|passport)$/.test(a.field)).map((a) => h('tr', {},
            h('th', { scope: 'row' }, t(`ans_${a.field}`) === `ans_${a.field}` ? a.field : t(`ans_${a.field}`)),
            h('td', {}, answerValue(a)),
            h('td', { class: 'mono' }, Array.isArray(a.codes) ? a.codes.join(', ') : a.code ?? ''))),
          h('tr', {},
            h('th', { scope: 'row' }, t('id_number')),
            h('td', {}, idBox, ' ',
              rec.id_masked ? h('button', { type: 'button', id: 'act-reveal', class: 'link', onclick: () => revealDialog() }, t('a_reveal')) : null),
            h('td', { class: 'mono' }, rec.id_type || ''))))),
    section(t('duplicates'),
      dups.length
        ? h('ul', { class: 'dups' }, dups.map((d) => h('li', {}, t('dup_line', { ref: d.ref, district: name('districts', d.district), status: t(`st_${d.status}`) }))))
        : h('p', { class: 'muted' }, t('duplicates_none'))),
    section(t('activity'),
      activity.length
        ? h('ol', { class: 'feed', id: 'activity' }, activity.map((a) => activityItem(a)))
        : h('p', { class: 'muted' }, t('activity_none'))),
    section(t('history'),
      history.length
        ? h('ol', { class: 'feed' }, history.map((s) => h('li', {},
          h('time', { datetime: s.at || s.created_at }, when(s.at || s.created_at)), ' ',
          h('strong', {}, s.kind ? t(`kind_${s.kind}`) : ''), ' ', s.channel ? t(`ch_${s.channel}`) : '')))
        : h('p', { class: 'muted' }, '—')));
}

function activityItem(a) {
  if (a.type === 'correction') {
    const show = (v) => (v === null || v === undefined ? '—' : Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? label(v, v.code) : String(v));
    return h('li', {},
      h('time', { datetime: a.at }, when(a.at)), ' ',
      h('strong', {}, t('act_correction')), ' ',
      `${t(`ans_${a.field}`)}: ${show(a.old)} → ${show(a.new)}`);
  }
  return h('li', { class: a.undone_at ? 'undone' : null },
    h('time', { datetime: a.at }, when(a.at)), ' ',
    h('strong', {}, t(`act_${String(a.action || '').replace('-', '_')}`)), ' ',
    a.officer ? h('span', {}, t('act_by', { who: a.officer })) : null, ' ',
    a.to ? statusBadge(a.to) : null, ' ',
    a.reason ? h('span', {}, label(a.reason, a.reason && a.reason.code)) : null, ' ',
    a.undone_at ? h('span', { class: 'muted' }, t('act_undone', { at: when(a.undone_at) })) : null, ' ',
    smsLine(a.sms));
}

function multiValue(c) {
  if (c.multiple) return [...c.selectedOptions].map((o) => o.value).join(',');
  return c.value.trim();
}
