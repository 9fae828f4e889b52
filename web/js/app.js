// app.js -- the console's shell: language switch, who is signed in, the
// pages by hash (#/login, #/queue?filters, #/record/REF, #/officers,
// #/audit, #/notices, #/notice/ID, #/compose[/ID]), and a status line for what just happened.  Plain ES modules,
// no build step; each page is a module with render(main, ctx).

import { h, clear } from './dom.js';
import { toast, errorText, go } from './ui.js';
import { t, getLang, setLang, onLang, translatePage } from './i18n.js';
import { me, logout, onSessionEnd } from './api.js';
import * as loginPage from './login.js';
import * as queuePage from './queue.js';
import * as recordPage from './record.js';
import * as officersPage from './officers.js';
import * as auditPage from './audit.js';
import * as totpPage from './totp.js';
import * as statsPage from './stats.js';

const pages = {
  login: loginPage,
  queue: queuePage,
  record: recordPage,
  officers: officersPage,
  audit: auditPage,
  totp: totpPage,
  stats: statsPage,
};
// Pages loaded on first use (not part of the sign-in's weight).
const later = {
  notices: () => import('./notices.js'),
  notice: () => import('./notices.js'),
  compose: () => import('./compose.js'),
};
const adminOnly = new Set(['officers', 'audit']);

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logoutBtn = document.getElementById('logout');
const langSel = document.getElementById('lang');

let renderSeq = 0;

function route() {
  const raw = location.hash.replace(/^#/, '') || '/queue';
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  return {
    page: parts[0] || 'queue',
    arg: parts[1] ? decodeURIComponent(parts[1]) : '',
    params: new URLSearchParams(qs || ''),
  };
}

function shell(user) {
  nav.hidden = !user;
  who.hidden = !user;
  logoutBtn.hidden = !user;
  if (!user) return;
  clear(who).append(t('who', { user: user.username, role: t(`role_${user.role}`) }));
  for (const a of nav.querySelectorAll('a')) {
    a.hidden = (a.dataset.role === 'admin' && user.role !== 'admin') || (a.dataset.role === 'staff' && user.role === 'analyst');
    if (a.dataset.page === route().page || (a.dataset.page === 'notices' && ['notice', 'compose'].includes(route().page))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function render() {
  const seq = ++renderSeq;
  const r = route();
  let user = me();
  // The session lives in this tab (the CSRF token of its login is in
  // sessionStorage): without one, sign in first.
  if (!user && r.page !== 'login') {
    location.replace(`#/login?next=${encodeURIComponent(location.hash || '#/queue')}`);
    return;
  }
  let page = pages[r.page] || later[r.page] ? r.page : 'queue';
  if (adminOnly.has(page) && user && user.role !== 'admin') page = 'queue';
  // analysts have no queue: their console is the dashboard
  if (user && user.role === 'analyst' && page !== 'login' && page !== 'totp') page = 'stats';
  // an admin who must enrol a second factor does that first
  if (user && user.totp_required && page !== 'login') page = 'totp';
  shell(page === 'login' ? null : user);
  translatePage();
  clear(main);
  main.append(h('p', { class: 'muted' }, t('loading')));
  const ctx = { ...r, user, isCurrent: () => seq === renderSeq, rerender: render };
  try {
    const mod = pages[page] || (await later[page]());
    if (seq !== renderSeq) return;
    await mod.render(main, ctx);
  } catch (e) {
    if (seq !== renderSeq) return;
    clear(main).append(h('p', { class: 'error', role: 'alert' }, errorText(e)));
  }
  if (seq === renderSeq && ctx.focus !== false) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    }
  }
}

langSel.value = getLang();
langSel.addEventListener('change', () => setLang(langSel.value));
onLang(() => render());
logoutBtn.addEventListener('click', async () => {
  try {
    await logout();
  } catch {
    // the session is forgotten here either way
  }
  toast(t('logged_out'));
  go('#/login');
});
onSessionEnd(() => {
  if (route().page === 'login') return;
  toast(t('session_ended'), 'warn');
  location.replace(`#/login?next=${encodeURIComponent(location.hash)}`);
});
window.addEventListener('hashchange', () => render());
render();
