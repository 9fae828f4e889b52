// i18n.js -- the language of the console (Bangla by default, English by
// choice, remembered in this browser) and t(key, vars) over strings.js.

import { strings } from './strings.js';

const KEY = 'remigate.lang';
let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'bn';
const listeners = [];

export function getLang() {
  return lang;
}

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'bn';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang;
  for (const f of listeners) f(lang);
}

export function onLang(f) {
  listeners.push(f);
}

export function t(key, vars) {
  let s = strings[lang][key] ?? strings.en[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// A label from the API's {en, bn} pair (list items), else the code.
export function label(item, fallback) {
  if (item && typeof item === 'object') return item[lang] || item.en || item.code || fallback || '';
  return fallback ?? item ?? '';
}

const bnDigits = '০১২৩৪৫৬৭৮৯';
// Numbers in the reader's script.
export function num(n) {
  const s = String(n);
  return lang === 'bn' ? s.replace(/[0-9]/g, (d) => bnDigits[d]) : s;
}

// A timestamp (ISO 8601) as local date and time, in the reader's language.
export function when(iso, dateOnly) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const opts = dateOnly
    ? { year: 'numeric', month: 'short', day: 'numeric' }
    : { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  return d.toLocaleString(lang === 'bn' ? 'bn-BD' : 'en-GB', opts);
}

// Every element with data-i18n gets its text, data-i18n-aria its
// aria-label, data-i18n-placeholder its placeholder.
export function translatePage(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  document.documentElement.lang = lang;
}
