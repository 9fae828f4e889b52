// officers.js -- accounts (admin only): the list, adding an officer with
// role and districts, disabling one (their sessions end at once), changing
// districts.  The admin's own second factor is totp.js.

import { h, field, select } from './dom.js';
import { t, when, getLang } from './i18n.js';
import { get, post } from './api.js';
import { loadLists, options, name } from './lists.js';
import { dialog, toast, errorText } from './ui.js';

const ROLES = ['officer', 'admin', 'analyst'];

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
  const list = await get('officers');
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
          ? h('button', { type: 'button', class: 'secondary', onclick: () => setPassword(o) }, t('o_set_password')) : null, ' ',
        o.totp && o.username !== ctx.user.username
          ? h('button', { type: 'button', class: 'secondary', onclick: () => resetTotp(o) }, t('o_totp_reset')) : null, ' ',
        !disabled && o.username !== ctx.user.username
          ? h('button', { type: 'button', class: 'danger', onclick: () => disable(o) }, t('o_disable')) : null,
        disabled
          ? h('button', { type: 'button', class: 'secondary', onclick: () => enable(o) }, t('o_enable')) : null));
  }));

  async function disable(o) {
    const done = await dialog({
      title: t('o_disable_confirm', { user: o.username }),
      body: [],
      submitLabel: t('o_disable'),
      danger: true,
      onSubmit: () => post(`officers/${encodeURIComponent(o.username)}/disable`, {}),
    });
    if (done) {
      toast(t('o_disabled_done', { user: o.username }));
      ctx.rerender();
    }
  }

  async function setPassword(o) {
    const pw = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '8', maxlength: '128', required: true });
    const done = await dialog({
      title: `${t('o_set_password')}: ${o.username}`,
      body: [field(t('o_password'), pw), h('p', { class: 'muted' }, t('o_password_note'))],
      submitLabel: t('save'),
      onSubmit: async () => {
        if (pw.value.length < 8) {
          pw.focus();
          throw t('required');
        }
        return post(`officers/${encodeURIComponent(o.username)}/password`, { password: pw.value });
      },
    });
    if (done) toast(t('o_saved'));
  }

  async function resetTotp(o) {
    const done = await dialog({
      title: t('o_totp_reset_confirm', { user: o.username }),
      body: [],
      submitLabel: t('o_totp_reset'),
      danger: true,
      onSubmit: () => post(`officers/${encodeURIComponent(o.username)}/totp-reset`, {}),
    });
    if (done) {
      toast(t('o_saved'));
      ctx.rerender();
    }
  }

  async function enable(o) {
    try {
      await post(`officers/${encodeURIComponent(o.username)}/enable`, {});
      toast(t('o_saved'));
      ctx.rerender();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  async function editDistricts(o) {
    const sel = districtSelect(o.districts);
    const done = await dialog({
      title: `${t('o_districts')}: ${o.username}`,
      body: [field(t('o_districts'), sel, t('o_districts_help'))],
      submitLabel: t('save'),
      onSubmit: () => post(`officers/${encodeURIComponent(o.username)}/districts`, { districts: picked(sel) }),
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
    h('p', {}, h('a', { href: '#/totp' }, t('totp_title'))),
    h('div', { class: 'scroll' }, h('table', { class: 'officers' },
      h('caption', { class: 'sr-only' }, t('officers_title')),
      h('thead', {}, h('tr', {}, ['o_username', 'o_role', 'o_districts', 'o_state', 'o_totp', 'o_last_login'].map((k) => h('th', { scope: 'col' }, t(k))), h('td', {}))),
      body)),
    addForm);
}
