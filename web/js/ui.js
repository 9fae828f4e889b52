// ui.js -- what every page uses besides the DOM helpers: the status line,
// error messages in the reader's language, navigation, and dialogs.

import { h, clear } from './dom.js';
import { t } from './i18n.js';
import { ApiError } from './api.js';

// A short message in the status line (read out by screen readers).
export function toast(msg, kind = 'info') {
  const el = document.getElementById('toast');
  clear(el);
  el.className = msg ? kind : '';
  if (!msg) return;
  el.append(
    h('span', {}, msg),
    h('button', { type: 'button', class: 'link', 'aria-label': t('close'), onclick: () => toast('') }, '×'),
  );
}

// The message of an API error, in the reader's language.
export function errorText(e) {
  if (!(e instanceof ApiError)) return t('error_generic', { code: String(e && e.message) });
  if (e.status === 0) return t('offline');
  if (e.status === 403) return t('forbidden');
  if (e.status === 404) return t('not_found');
  if (e.status === 409) return t('conflict');
  return t('error_generic', { code: e.code });
}

// Show the page of hash (render again when it is the current one).
export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

// A modal dialog (<dialog>: focus stays inside, Escape closes).  body is a
// list of nodes (labelled controls); onSubmit(form) runs on the submit
// button and closes the dialog when it resolves, or shows the error it
// throws (string or ApiError) and stays open.  Resolves with onSubmit's
// value, or null when cancelled.
export function dialog({ title, body, submitLabel, danger, onSubmit }) {
  return new Promise((resolve) => {
    const msg = h('p', { class: 'error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: danger ? 'danger' : '' }, submitLabel || t('confirm'));
    const cancel = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, t('cancel'));
    const titleEl = h('h2', { id: `dlg-title-${Date.now()}` }, title);
    const form = h('form', { method: 'dialog', novalidate: true }, titleEl, body, msg, h('div', { class: 'buttons' }, submit, cancel));
    const dlg = h('dialog', { 'aria-labelledby': titleEl.id }, form);
    let result = null;
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.hidden = true;
      submit.disabled = true;
      try {
        result = (await onSubmit(form)) ?? true;
        dlg.close();
      } catch (e) {
        msg.textContent = typeof e === 'string' ? e : errorText(e);
        msg.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    // Tab and Shift+Tab go round the dialog's controls (a modal <dialog>
    // alone lets focus out to the browser's own controls)
    dlg.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return;
      const f = [...dlg.querySelectorAll('input, select, textarea, button, a[href]')].filter((x) => !x.disabled && !x.closest('[hidden]'));
      if (!f.length) return;
      const first = f[0];
      const last = f[f.length - 1];
      if (ev.shiftKey && document.activeElement === first) {
        ev.preventDefault();
        last.focus();
      } else if (!ev.shiftKey && document.activeElement === last) {
        ev.preventDefault();
        first.focus();
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector('input, select, textarea');
    (first || submit).focus();
  });
}
