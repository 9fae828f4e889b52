// login.js -- the sign-in page: username and password, then the
// authenticator code when the account has a second factor (the server
// answers that it needs one; admins always do once enrolled).

import { h, field } from './dom.js';
import { t } from './i18n.js';
import { login, ApiError } from './api.js';
import { go, toast } from './ui.js';

export async function render(main, ctx) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const otp = h('input', { name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });
  const otpField = field(t('otp'), otp);
  otpField.hidden = true;
  const msg = h('p', { class: 'error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit' }, t('login_submit'));

  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, t('login_title')),
    h('p', { class: 'muted' }, t('login_intro')),
    field(t('username'), user),
    field(t('password'), pass),
    otpField,
    msg,
    h('div', { class: 'buttons' }, submit));

  function say(text) {
    msg.textContent = text;
    msg.hidden = !text;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!user.value.trim() || !pass.value) {
      say(t('required'));
      (user.value.trim() ? pass : user).focus();
      return;
    }
    say('');
    submit.disabled = true;
    try {
      await login(user.value.trim(), pass.value, otpField.hidden ? '' : otp.value.trim());
      toast('');
      const next = ctx.params.get('next');
      go(next && next.startsWith('#/') && !next.startsWith('#/login') ? next : '#/queue');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && /otp|totp|second|factor/i.test(e.code) && otpField.hidden) {
        otpField.hidden = false;
        say(t('otp_needed'));
        otp.focus();
      } else if (e instanceof ApiError && e.status === 429) {
        say(t('login_throttled', { secs: e.retryAfter || e.body.retry_after || 1 }));
      } else if (e instanceof ApiError && e.status === 401) {
        say(t('login_bad'));
        pass.value = '';
        otp.value = '';
        pass.focus();
      } else {
        say(e instanceof ApiError && e.status === 0 ? t('offline') : t('error_generic', { code: e.code || e.message }));
      }
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  ctx.focus = false;
  user.focus();
}
