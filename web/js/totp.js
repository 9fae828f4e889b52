// totp.js -- the signed-in account's second factor (RFC 6238): enrolment
// shows the otpauth:// URI as a QR code (drawn as SVG from
// web/vendor/qrcode.mjs, loaded only on this page) and the secret once;
// a code from the app turns it on.  An admin who must enrol is sent here
// after signing in, and can reach nothing else until done.

import { h, field } from './dom.js';
import { t } from './i18n.js';
import { me, post, whoami } from './api.js';
import { toast, errorText, go } from './ui.js';

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

export async function render(main, ctx) {
  const user = me();
  const box = h('section', { class: 'card', id: 'totp' });
  main.replaceChildren(h('h1', {}, t('totp_title')), box);
  if (user && user.totp) {
    box.append(h('p', {}, t('totp_on')));
    return;
  }
  const start = h('button', { type: 'button', id: 'totp-start' }, t('totp_start'));
  box.append(h('p', {}, user && user.totp_required ? t('totp_needed') : t('totp_off')), start);
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
    if (!ctx.isCurrent()) return;
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
        await whoami().catch(() => null);
        toast(t('totp_done'));
        go('#/queue');
      } catch (e) {
        msg.textContent = e.status === 400 || e.status === 401 || e.status === 403 ? t('totp_wrong') : errorText(e);
        msg.hidden = false;
        code.focus();
      }
    });
    start.replaceWith(form);
    code.focus();
  });
}
