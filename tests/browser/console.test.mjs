// console.test.mjs -- the officer console in headless Chromium against the
// real daemon of scripts/stack (tests/browser/run.sh starts it and passes
// stack.env as STACK_ENV).  Prints "browser: N passed, N failed".

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, run, readEnv, assert, eq, until } from './lib.mjs';
import { strings } from '../../web/js/strings.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = process.env.STACK_ENV ? readEnv(process.env.STACK_ENV) : {};
const base = process.env.REMIGATE_URL || env.REMIGATE_URL;
if (!base) {
  console.log('FAIL - no REMIGATE_URL (STACK_ENV or REMIGATE_URL)');
  console.log('browser: 0 passed, 1 failed');
  process.exit(1);
}
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const PAGE_MAX = 200 * 1024;

// ---- the files themselves ----------------------------------------------------

test('dictionary: every key in both languages, none empty, same {placeholders}', async () => {
  const en = Object.keys(strings.en).sort();
  const bn = Object.keys(strings.bn).sort();
  eq(JSON.stringify(bn), JSON.stringify(en), 'bn and en keys differ');
  for (const k of en) {
    assert(strings.en[k].trim() && strings.bn[k].trim(), `empty label ${k}`);
    const ph = (s) => (s.match(/\{\w+\}/g) || []).sort().join();
    eq(ph(strings.bn[k]), ph(strings.en[k]), `placeholders of ${k}`);
  }
  assert(en.length > 100, `only ${en.length} labels`);
});

test('dictionary: every t(\'key\') the pages use exists', async () => {
  const dir = join(root, 'web', 'js');
  const missing = [];
  for (const f of readdirSync(dir)) {
    const src = readFileSync(join(dir, f), 'utf8');
    for (const m of src.matchAll(/\bt\('([a-z0-9_]+)'/g)) if (!(m[1] in strings.en)) missing.push(`${f}:${m[1]}`);
  }
  const html = readFileSync(join(root, 'web', 'index.html'), 'utf8');
  for (const m of html.matchAll(/data-i18n(?:-aria)?="([a-z0-9_]+)"/g)) if (!(m[1] in strings.en)) missing.push(`index.html:${m[1]}`);
  eq(missing.join(' '), '', 'labels used but not in strings.js');
});

test('vendored QR library: web/vendor/qrcode.mjs is the pinned qrcode-generator, byte for byte', async () => {
  const pkg = join(here, 'node_modules', 'qrcode-generator', 'package.json');
  const want = readFileSync(join(dirname(pkg), 'dist', 'qrcode.mjs'));
  const got = readFileSync(join(root, 'web', 'vendor', 'qrcode.mjs'));
  assert(want.equals(got), 'web/vendor/qrcode.mjs differs from node_modules/qrcode-generator/dist/qrcode.mjs (make web-vendor)');
  const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
  eq(lock.packages['node_modules/qrcode-generator'].version, JSON.parse(readFileSync(pkg, 'utf8')).version, 'lock and installed version');
});

test('web/: no inline script or style, no external URL in any page or module', async () => {
  const bad = [];
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(html|js|css)$/.test(f) && !p.includes('vendor')) {
        const s = readFileSync(p, 'utf8');
        if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(s)) bad.push(`${p}: inline <script>`);
        if (/\sstyle=/i.test(s) && f.endsWith('.html')) bad.push(`${p}: style attribute`);
        if (/\bon[a-z]+=["']/i.test(s) && f.endsWith('.html')) bad.push(`${p}: inline handler`);
        if (/https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(s)) bad.push(`${p}: external URL`);
        if (/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/.test(s)) bad.push(`${p}: markup from strings`);
      }
    }
  };
  walk(join(root, 'web'));
  eq(bad.join('; '), '', 'inline or external content');
});

// ---- served pages ------------------------------------------------------------

test('login page: loads with no console error; CSP, nosniff, no-referrer on the page and every file; under 200 KB', async (t) => {
  const page = await t.page();
  const headers = [];
  page.on('response', (r) => {
    if (r.url().startsWith(base)) headers.push({ url: r.url(), status: r.status(), h: r.headers() });
  });
  const res = await page.goto('/console/');
  eq(res.status(), 200, 'status of /console/');
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.waitForLoadState('networkidle');
  assert(headers.length >= 5, `only ${headers.length} responses`);
  for (const r of headers) {
    eq(r.h['content-security-policy'], CSP, `CSP of ${r.url}`);
    eq(r.h['x-content-type-options'], 'nosniff', `nosniff of ${r.url}`);
    eq(r.h['referrer-policy'], 'no-referrer', `Referrer-Policy of ${r.url}`);
  }
  const total = [...page.bytes.values()].reduce((a, b) => a + b, 0);
  assert(total > 10000 && total <= PAGE_MAX, `login page weighs ${total} bytes`);
});

test('CSP is enforced: an injected inline script does not run', async (t) => {
  const page = await t.page();
  t.allowConsole(/Content Security Policy|Refused to execute inline script/);
  await page.goto('/console/');
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = 1';
    document.body.append(s);
  });
  eq(await page.evaluate(() => window.__inline), undefined, 'inline script ran');
});

test('static files: a second load revalidates with ETag and gets 304', async (t) => {
  const page = await t.page();
  await page.goto('/console/');
  await page.getByRole('heading', { level: 1 }).waitFor();
  const statuses = [];
  page.on('response', (r) => statuses.push(r.status()));
  await page.reload();
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.waitForLoadState('networkidle');
  assert(statuses.includes(304), `no 304 on reload: ${statuses.join(',')}`);
});

test('language: Bangla by default, English by choice, remembered after a reload; html lang follows', async (t) => {
  const page = await t.page();
  await page.goto('/console/');
  const h1 = page.getByRole('heading', { level: 1 });
  await until(async () => (await h1.textContent()) === strings.bn.login_title, 5000, 'Bangla heading');
  eq(await page.getAttribute('html', 'lang'), 'bn', 'html lang');
  await page.getByLabel(strings.bn.language).selectOption('en');
  await until(async () => (await h1.textContent()) === strings.en.login_title, 5000, 'English heading');
  eq(await page.getAttribute('html', 'lang'), 'en', 'html lang');
  await page.getByLabel(strings.en.username).waitFor();
  await page.reload();
  await until(async () => (await page.getByRole('heading', { level: 1 }).textContent()) === strings.en.login_title, 5000, 'English after reload');
});

// Every visible control has a label (its own <label>, aria-label or
// aria-labelledby) and the page does not scroll sideways.
async function checkLayout(page, what) {
  const r = await page.evaluate(() => {
    const unlabelled = [];
    for (const el of document.querySelectorAll('input, select, textarea, button')) {
      if (el.type === 'hidden' || el.closest('[hidden]') || !el.offsetParent) continue;
      const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
        (el.tagName === 'BUTTON' && el.textContent.trim());
      if (!named) unlabelled.push(el.outerHTML.slice(0, 80));
    }
    return { unlabelled, sw: document.documentElement.scrollWidth, w: window.innerWidth };
  });
  eq(r.unlabelled.join(' | '), '', `${what}: controls without a label`);
  assert(r.sw <= r.w, `${what}: scrolls sideways (${r.sw} > ${r.w})`);
}

for (const width of [360, 1366]) {
  test(`login page at ${width} px: every control labelled, no sideways scroll, keyboard reaches the form with a visible focus`, async (t) => {
    const page = await t.page({ viewport: { width, height: 740 } });
    await page.goto('/console/');
    await page.getByRole('heading', { level: 1 }).waitFor();
    await checkLayout(page, `login ${width}`);
    // From the top: Tab through the page until the username field.
    await page.locator('body').focus();
    let found = false;
    for (let i = 0; i < 8 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement && document.activeElement.name === 'username');
    }
    assert(found, 'Tab never reached the username field');
    const outline = await page.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return `${s.outlineStyle} ${s.outlineWidth}`;
    });
    assert(!/^none/.test(outline) && !/ 0px$/.test(outline), `focus not visible: outline ${outline}`);
  });
}

const ok = await run('browser', base);
process.exit(ok ? 0 : 1);
