// officers.js -- accounts (admin only): the list, adding an officer with
// role and districts, disabling one (their sessions end at once), changing
// districts; and the admin's own second factor: enrolment shows a QR code
// of the otpauth:// URI (drawn here as SVG from web/vendor/qrcode.mjs,
// loaded only on this step) and the secret once, then a code confirms it.

import { h, field, select } from './dom.js';
import { t, when, getLang } from './i18n.js';
import { get, post } from './api.js';
import { loadLists, options, name } from './lists.js';
import { dialog, toast, errorText } from './ui.js';

const ROLES = ['officer', 'admin', 'analyst'];

// The QR code of text as an <svg> of dark squares (no markup parsing).
export async function qrSvg(text, title) {
  const { default: qrcode } = await import('../vendor/qrcode.mjs');
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const margin = 4;
  const size = n + 2 * margin;
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('width', String(size * 5));
  svg.setAttribute('height', String(size * 5));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(NS, 'rect');
  bg.setAttribute('width', String(size));
  bg.setAttribute('height', String(size));
  bg.setAttribute('fill', '#fff');
  svg.append(bg);
  let d = '';
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (qr.isDark(y, x)) d += `M${x + margin} ${y + margin}h1v1h-1z`;
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(path);
  return svg;
}

function districtSelect(chosen) {
  const s = select({ name: 'districts', multiple: true, size: '8' }, options('districts'));
  for (const o of s.options) o.selected = (chosen || []).includes(o.value);
  return s;
}

function picked(sel) {
  return [...sel.selectedOptions].map((o) => o.value);
}

export async function render(main, ctx) {
  await loadLists();
  const [list, mine] = await Promise.all([get('officers'), get('me').catch(() => ({}))]);
  if (!ctx.isCurrent()) return;
  const officers = list.items || list.officers || [];

  const body = h('tbody', {}, officers.map((o) => {
    const disabled = o.disabled ?? (o.enabled === false);
    return h('tr', { 'data-user': o.username },
      h('th', { scope: 'row', 'data-label': t('o_username') }, o.username),
      h('td', { 'data-label': t('o_role') }, t(`role_${o.role}`)),
      h('td', { 'data-label': t('o_districts') }, (o.districts || []).map((d) => name('districts', d)).join(', ') || (o.role === 'admin' ? t('all') : '—')),
      h('td', { 'data-label': t('o_state') }, disabled ? t('o_disabled') : t('o_enabled')),
      h('td', { 'data-label': t('o_totp') }, o.totp ? t('yes') : t('no')),
      h('td', { 'data-label': t('o_last_login') }, when(o.last_login)),
      h('td', {},
        o.role === 'officer' && !disabled
          ? h('button', { type: 'button', class: 'secondary', onclick: () => editDistricts(o) }, t('o_edit_districts')) : null, ' ',
        !disabled && o.username !== ctx.user.username
          ? h('button', { type: 'button', class: 'danger', onclick: () => disable(o) }, t('o_disable')) : null));
  }));

  async function disable(o) {
    const done = await dialog({
      title: t('o_disable_confirm', { user: o.username }),
      body: [],
      submitLabel: t('o_disable'),
      danger: true,
      onSubmit: () => post(`officers/${encodeURIComponent(o.id ?? o.username)}/disable`, {}),
    });
    if (done) {
      toast(t('o_disabled_done', { user: o.username }));
      ctx.rerender();
    }
  }

  async function editDistricts(o) {
    const sel = districtSelect(o.districts);
    const done = await dialog({
      title: `${t('o_districts')}: ${o.username}`,
      body: [field(t('o_districts'), sel, t('o_districts_help'))],
      submitLabel: t('save'),
      onSubmit: () => post(`officers/${encodeURIComponent(o.id ?? o.username)}/districts`, { districts: picked(sel) }),
    });
    if (done) {
      toast(t('o_saved'));
      ctx.rerender();
    }
  }

  // add an officer
  const user = h('input', { name: 'username', autocomplete: 'off', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const role = select({ name: 'role' }, ROLES.map((r) => [r, t(`role_${r}`)]), 'officer');
  const dists = districtSelect([]);
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '8', maxlength: '128', required: true });
  const msg = h('p', { class: 'error', role: 'alert', hidden: true });
  const addForm = h('form', { class: 'card', id: 'add-officer', novalidate: true },
    h('h2', {}, t('o_add')),
    h('div', { class: 'grid' },
      field(t('o_username'), user),
      field(t('o_role'), role),
      field(t('o_districts'), dists, t('o_districts_help')),
      field(t('o_password'), pass)),
    msg,
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('o_add'))));
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    if (!user.value.trim() || pass.value.length < 8) {
      msg.textContent = t('required');
      msg.hidden = false;
      (user.value.trim() ? pass : user).focus();
      return;
    }
    try {
      await post('officers', { username: user.value.trim(), role: role.value, districts: picked(dists), password: pass.value });
      toast(t('o_added', { user: user.value.trim() }));
      ctx.rerender();
    } catch (e) {
      msg.textContent = e.body && e.body.message && getLang() === 'en' ? e.body.message : errorText(e);
      msg.hidden = false;
    }
  });

  main.replaceChildren(
    h('h1', {}, t('officers_title')),
    totpSection(mine, ctx),
    h('div', { class: 'scroll' }, h('table', { class: 'officers' },
      h('caption', { class: 'sr-only' }, t('officers_title')),
      h('thead', {}, h('tr', {}, ['o_username', 'o_role', 'o_districts', 'o_state', 'o_totp', 'o_last_login'].map((k) => h('th', { scope: 'col' }, t(k))), h('td', {}))),
      body)),
    addForm);
}

function totpSection(mine, ctx) {
  const box = h('section', { class: 'card', id: 'totp' }, h('h2', {}, t('totp_title')));
  if (mine.totp) {
    box.append(h('p', {}, t('totp_on')));
    return box;
  }
  const start = h('button', { type: 'button', id: 'totp-start' }, t('totp_start'));
  box.append(h('p', {}, t('totp_off')), start);
  start.addEventListener('click', async () => {
    start.disabled = true;
    let enrol;
    try {
      enrol = (await post('totp/enrol', {})).data;
    } catch (e) {
      toast(errorText(e), 'error');
      start.disabled = false;
      return;
    }
    const code = h('input', { name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6', required: true });
    const msg = h('p', { class: 'error', role: 'alert', hidden: true });
    const svg = await qrSvg(enrol.uri, t('totp_qr_alt'));
    const form = h('form', { novalidate: true },
      h('p', {}, t('totp_scan')),
      h('div', { class: 'qr', id: 'totp-qr' }, svg),
      h('p', {}, `${t('totp_secret')}: `, h('code', { id: 'totp-secret' }, enrol.secret)),
      field(t('totp_code'), code),
      msg,
      h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('totp_confirm'))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.hidden = true;
      try {
        await post('totp/confirm', { otp: code.value.trim() });
        box.replaceChildren(h('h2', {}, t('totp_title')), h('p', { role: 'status' }, t('totp_done')));
        toast(t('totp_done'));
      } catch (e) {
        msg.textContent = e.status === 400 || e.status === 401 || e.status === 403 ? t('login_bad') : errorText(e);
        msg.hidden = false;
        code.focus();
      }
    });
    start.replaceWith(form);
    code.focus();
  });
  void ctx;
  return box;
}
