// console.test.mjs -- the officer console in headless Chromium against the
// real daemon of scripts/stack (tests/browser/run.sh starts it and passes
// stack.env as STACK_ENV).  Prints "browser: N passed, N failed".

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import jsQR from 'jsqr';
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
// The daemon's API routes, "METHOD /pattern" ({} for a segment).
const routes = new Set(
  execFileSync(process.env.REMIGATE_BIN || join(root, 'build', 'remigate'), ['api-routes'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 2).join(' ')),
);
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


// ---- signed in: the flows of issue 10 ------------------------------------------

const PG = env.PG_DSN;
const SIM = env.SMSC_CONTROL_URL;
const WINDOW_S = Number(process.env.UNDO_WINDOW_S || 8);

// The demo accounts scripts/stack made: username -> {password, role, districts}.
function demoLogins() {
  const out = {};
  if (!env.DEMO_LOGINS) return out;
  for (const line of readFileSync(env.DEMO_LOGINS, 'utf8').split('\n')) {
    const [user, password, role, ...districts] = line.trim().split(/\s+/);
    if (user && password) out[user] = { password, role, districts };
  }
  return out;
}

function sql(query) {
  return execFileSync('psql', ['-X', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', PG, '-c', query], { encoding: 'utf8' }).trim();
}
function rows(query) {
  const out = sql(query);
  return out ? out.split('\n').map((l) => l.split('\t')) : [];
}
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

// Messages the simulator's handsets got for msisdn after record number since.
async function handset(msisdn, since = 0, waitMs = 0) {
  const r = await fetch(`${SIM}/mt?msisdn=${msisdn}&since=${since}&wait=${waitMs}`);
  if (r.status === 504) return [];
  const d = await r.json();
  return Array.isArray(d) ? d : d.items || d.mt || [d];
}
async function simNow() {
  const d = await (await fetch(`${SIM}/health`)).json();
  return d.pdus || 0;
}

async function signIn(page, user, password, lang = 'en') {
  await page.goto('/console/');
  await page.locator('#lang').selectOption(lang);
  await page.getByLabel(strings[lang].username).fill(user);
  await page.getByLabel(strings[lang].password).fill(password);
  await page.getByRole('button', { name: strings[lang].login_submit }).click();
}

// A pending record of the officer's districts: [ref, msisdn, district, lang].
function pendingIn(districts, extra = '') {
  const r = rows(`SELECT ref, msisdn, district, lang FROM returnees WHERE status = 'pending'
    AND district IN (${districts.map(q).join(',')}) ${extra} ORDER BY random() LIMIT 1`);
  assert(r.length === 1, `no pending record in ${districts.join(',')}`);
  return r[0];
}

async function openRecord(page, ref, lang = 'en') {
  await page.evaluate((r) => { location.hash = `#/record/${r}`; }, ref);
  await page.getByRole('heading', { level: 1, name: strings[lang].record_title.replace('{ref}', ref) }).waitFor();
}

async function statusIs(page, status, lang = 'en') {
  await until(async () => (await page.locator('#rec-status').textContent()).trim() === strings[lang][`st_${status}`], 10000, `status ${status}`);
}

const logins = demoLogins();
const officer = (name) => {
  const o = logins[name];
  assert(o, `no demo account ${name} in ${env.DEMO_LOGINS}`);
  return o;
};

test('sign in: a wrong password is refused with a message; the right one shows the queue with the officer\'s name, the district filter by name (GET /api/lists); the cookie is HttpOnly and SameSite=Strict; log out ends the session', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  t.allowConsole(/401|404/); // the wrong password; /api/records before it exists
  await signIn(page, 'officer-dhaka', `${o.password}-wrong`);
  await page.getByText(strings.en.login_bad).waitFor();
  await page.getByLabel(strings.en.password).fill(o.password);
  await page.getByRole('button', { name: strings.en.login_submit }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  eq((await page.locator('#who').textContent()).trim(), 'officer-dhaka (officer)', 'who is signed in');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'remigate_console');
  assert(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `session cookie ${JSON.stringify(cookie)}`);
  const names = await page.getByLabel(strings.en.f_district).locator('option').allTextContents();
  assert(names.includes('Dhaka') && names.includes('Gazipur') && !names.includes('Sylhet'), `district filter: ${names.join(', ')}`);
  await page.getByRole('button', { name: strings.en.logout }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.login_title }).waitFor();
  const r = await page.request.get('/api/me');
  eq(r.status(), 401, 'GET /api/me after logout');
}, { needs: ['POST /api/login', 'POST /api/logout', 'GET /api/lists'] });

test('an admin without a second factor is sent to enrol it first, and can reach no other page', async (t) => {
  const adm = officer('admin');
  const page = await t.page();
  t.allowConsole(/40[134]/);
  await signIn(page, 'admin', adm.password);
  await page.getByRole('heading', { level: 1, name: strings.en.totp_title }).waitFor();
  await page.evaluate(() => { location.hash = '#/officers'; });
  await page.getByRole('heading', { level: 1, name: strings.en.totp_title }).waitFor();
  const r = await page.request.get('/api/lists');
  eq(r.status(), 403, 'an admin before enrolment: GET /api/lists');
}, { needs: ['POST /api/login', 'GET /api/me'] });

test('analyst: the dashboard by district for the whole country, small counts hidden; a filter changes the numbers and the chart; the CSV downloads (BOM, Bangla labels) and is audited', async (t) => {
  const a = officer('analyst');
  const page = await t.page({ acceptDownloads: true });
  await signIn(page, 'analyst', a.password);
  await page.getByRole('heading', { level: 1, name: strings.en.st_title }).waitFor();
  const everyone = sql('SELECT count(*) FROM returnees');
  await until(async () => (await page.locator('#stat-total').textContent()).trim() === everyone, 10000, `total ${everyone}`);
  // the table's shown counts are the true ones, small ones are "<5" or "x"
  const cells = await page.locator('table.stats tbody tr').evaluateAll((trs) => trs.map((tr) => tr.lastElementChild.textContent.trim()));
  assert(cells.length > 1, 'district rows');
  const truth = rows('SELECT count(*) FROM returnees GROUP BY district').map((r) => Number(r[0]));
  const small = truth.filter((n) => n < 5).length;
  const hidden = cells.filter((c) => c === '<5' || c === 'x').length;
  assert(hidden >= small && (small === 0 || hidden >= 2), `hidden ${hidden}, small districts ${small}`);
  for (const c of cells) if (c !== '<5' && c !== 'x') assert(truth.includes(Number(c.replace(/,/g, ''))), `shown count ${c} is a district's`);
  const bars0 = await page.locator('figure.chart rect').count();
  // filter: women only
  await page.getByLabel(strings.en.st_f_sex, { exact: true }).selectOption('f');
  const women = sql("SELECT count(*) FROM returnees WHERE sex = 'f'");
  await until(async () => (await page.locator('#stat-total').textContent()).trim() === women, 10000, `women ${women}`);
  assert(women !== everyone, 'the filter changed the total');
  // a two-way view: sex x age band, the chart redrawn with one bar per sex
  await page.getByLabel(strings.en.st_view, { exact: true }).selectOption('sex,age_band');
  await until(async () => (await page.locator('figure.chart rect').count()) !== bars0, 10000, 'the chart redrawn');
  // the funnel: statuses by district with the median days to a decision
  await page.getByLabel(strings.en.st_view, { exact: true }).selectOption('district,status');
  await page.getByRole('columnheader', { name: strings.en.st_median_days }).waitFor();
  await page.getByLabel(strings.en.st_view, { exact: true }).selectOption('sex,age_band');
  await page.getByRole('columnheader', { name: strings.en.st_dim_sex, exact: false }).first().waitFor();
  // the CSV
  const before = Number(sql("SELECT count(*) FROM audit_log WHERE action = 'export'"));
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: strings.en.st_download }).click()]);
  const body = readFileSync(await dl.path());
  eq(body.subarray(0, 3).toString('hex'), 'efbbbf', 'UTF-8 BOM');
  const text = body.toString('utf8');
  assert(text.startsWith('\ufeffsex_code,sex_label_bn,sex_label_en,age_band_code,age_band_label_bn,age_band_label_en,n\r\n'), `header: ${text.slice(0, 90)}`);
  assert(text.includes('নারী'), 'Bangla labels');
  assert(/filename="remigate_aggregate_sex-age_band_all\.csv"/.test(dl.suggestedFilename()) || dl.suggestedFilename() === 'remigate_aggregate_sex-age_band_all.csv', `file name ${dl.suggestedFilename()}`);
  eq(Number(sql("SELECT count(*) FROM audit_log WHERE action = 'export' AND actor = 'analyst'")), before + 1, 'export audited');
}, { needs: ['GET /api/stats', 'GET /api/export.csv'] });

test('officer: every dashboard view shows numbers and a chart; a filter changes both; the records CSV streams with progress, holds only their districts and is audited with its SHA-256; the aggregate CSV, a dictionary and an indicator download', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page({ acceptDownloads: true });
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  await page.evaluate(() => { location.hash = '#/stats'; });
  await page.getByRole('heading', { level: 1, name: strings.en.st_title }).waitFor();
  const mine = `district IN (${o.districts.map(q).join(',')})`;
  const shownTotal = async () => (await page.locator('#stat-total').textContent()).trim();
  const chart = () => page.locator('figure.chart').innerHTML();
  const everyone = sql(`SELECT count(*) FROM returnees WHERE ${mine}`);
  await until(async () => (await shownTotal()) === everyone, 10000, `their total ${everyone}`);
  // every view: its table and its bars; the same people under each (skill counts mentions)
  const views = await page.getByLabel(strings.en.st_view, { exact: true }).locator('option').evaluateAll((os) => os.map((x) => x.value));
  assert(views.length >= 18, `${views.length} views`);
  const table = () => page.locator('table.stats').innerHTML();
  let prev = await table();
  for (const v of views.filter((x) => x !== 'district')) {
    await page.getByLabel(strings.en.st_view, { exact: true }).selectOption(v);
    await until(async () => page.url().includes(`dims=${encodeURIComponent(v)}`) && (await table()) !== prev, 10000, `view ${v} drawn`);
    await page.locator('table.stats tbody tr').first().waitFor();
    assert((await page.locator('figure.chart rect').count()) > 0, `bars of ${v}`);
    if (!v.includes('skill')) eq(await shownTotal(), everyone, `total of ${v}`);
    prev = await table();
  }
  // a filter: women; the total and the chart change
  await page.getByLabel(strings.en.st_view, { exact: true }).selectOption('country');
  await until(async () => page.url().includes('dims=country'), 10000, 'country view');
  await page.locator('table.stats tbody tr').first().waitFor();
  const before = await chart();
  await page.getByLabel(strings.en.st_f_sex, { exact: true }).selectOption('f');
  const women = sql(`SELECT count(*) FROM returnees WHERE ${mine} AND sex = 'f'`);
  assert(women !== everyone, 'women are fewer');
  await until(async () => (await shownTotal()) === women, 10000, `women ${women}`);
  assert((await chart()) !== before, 'the chart changed with the filter');
  const byCountry = rows(`SELECT coalesce(country, 'unknown'), count(*) FROM returnees WHERE ${mine} AND sex = 'f' GROUP BY 1`);
  const shown = await page.locator('table.stats tbody td.num').allTextContents();
  eq(shown.map(Number).sort((a, b) => a - b).join(), byCountry.map((r) => Number(r[1])).sort((a, b) => a - b).join(), 'the table\'s counts are SQL\'s');
  // the records: streamed, with progress, only their districts, women
  await page.locator('#records-progress').evaluate((el) => {
    window.recProgress = [];
    new MutationObserver(() => window.recProgress.push(el.textContent)).observe(el, { childList: true, subtree: true, characterData: true });
  });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#records-download').click()]);
  const body = readFileSync(await dl.path());
  eq(body.subarray(0, 3).toString('hex'), 'efbbbf', 'UTF-8 BOM');
  const text = body.toString('utf8');
  assert(text.startsWith('\ufeffref,status_code,status_label_bn,status_label_en,'), `header ${text.slice(0, 60)}`);
  const lines = text.slice(1).split('\r\n').filter(Boolean);
  const head = lines[0].split(',');
  const di = head.indexOf('district_code');
  const si = head.indexOf('sex_code');
  const recs = lines.slice(1).map((l) => l.split(','));
  eq(recs.length, Number(women), 'one line per woman of their districts');
  for (const r of recs) {
    assert(o.districts.includes(r[di]), `district ${r[di]} is not theirs`);
    eq(r[si], 'f', 'sex filter');
  }
  assert(!head.includes('msisdn') && !/nid|passport/i.test(lines[0]), 'no phone, NID or passport column');
  await until(async () => (await page.locator('#records-progress').textContent()).includes(strings.en.st_records_done.replace('{n}', women)), 5000, 'done message');
  const seen = await page.evaluate(() => window.recProgress);
  const pat = new RegExp(strings.en.st_records_progress.replace('{n}', '(\\d+)').replace('{total}', women));
  assert(seen.some((x) => pat.test(x)), `progress shown: ${seen.slice(0, 3).join(' | ')}`);
  assert(/^remigate_records_mydistricts_all_f_\d{8}T\d{4}\.csv$/.test(dl.suggestedFilename()), `file name ${dl.suggestedFilename()}`);
  const sha = createHash('sha256').update(body).digest('hex');
  const audit = rows("SELECT outcome, detail->>'rows', detail->>'sha256', detail->'filter'->>'sex' FROM audit_log WHERE action = 'export' AND target = 'records' AND actor = 'officer-dhaka' ORDER BY id DESC LIMIT 1");
  eq(audit.map((r) => r.join(' ')).join(), `ok ${women} ${sha} f`, 'audited: rows, SHA-256, filter');
  // the aggregate CSV of this view and its dictionary
  const [agg] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: strings.en.st_download }).click()]);
  const aggText = readFileSync(await agg.path(), 'utf8');
  assert(aggText.startsWith('\ufeffcountry_code,country_label_bn,country_label_en,n\r\n'), `aggregate header ${aggText.slice(0, 60)}`);
  assert(/\r\n[A-Z]{2},[^,\r\n]*[\u0980-\u09ff]/.test(aggText), `Bangla labels: ${aggText.slice(0, 200)}`);
  const [dict] = await Promise.all([page.waitForEvent('download'), page.locator('a.dictionary').first().click()]);
  const dictText = readFileSync(await dict.path(), 'utf8');
  assert(dictText.startsWith('\ufeffcolumn,type,meaning,code,label_bn,label_en\r\ncountry_code,'), `dictionary ${dictText.slice(0, 80)}`);
  // an indicator, as JSON
  const [ind] = await Promise.all([page.waitForEvent('download'), page.locator('p.indicators a[href$="destination_reason_year.json"]').click()]);
  const indJson = JSON.parse(readFileSync(await ind.path(), 'utf8'));
  eq(indJson.dataflow, 'BD_REMIGATE:DF_RETURN_REASONS(1.0)', 'indicator dataflow');
  eq(indJson.dimensions.map((d) => d.id).join(), 'DESTINATION,RETURN_REASON,TIME_PERIOD', 'indicator dimensions');
}, { needs: ['GET /api/stats', 'GET /api/export.csv', 'GET /api/export/dictionary.csv', 'GET /api/indicators/destination_reason_year.json'] });

test('officer signs in and works through every page of their districts\' pending records (Load more), oldest first, none twice, none outside', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  let refs = await until(async () => {
    const r = await page.locator('table.queue tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.ref));
    return r.length ? r : null;
  }, 10000, 'queue rows');
  // every page, by "Load more" (the server's keyset cursor)
  const more = page.getByRole('button', { name: strings.en.load_more });
  for (let pages = 1; pages < 20 && (await more.isVisible()); pages++) {
    const before = refs.length;
    await more.click();
    refs = await until(async () => {
      const r = await page.locator('table.queue tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.ref));
      return r.length > before ? r : null;
    }, 10000, 'the next page');
  }
  eq(new Set(refs).size, refs.length, 'a record shown twice across pages');
  const got = rows(`SELECT ref, district, created_at FROM returnees WHERE ref IN (${refs.map(q).join(',')})`);
  eq(got.length, refs.length, 'every row shown is a record');
  const outside = got.filter(([, d]) => !o.districts.includes(d));
  eq(outside.map((x) => x.join(':')).join(' '), '', 'rows outside the officer\'s districts');
  const order = refs.map((r) => got.find((g) => g[0] === r)[2]);
  eq(JSON.stringify(order), JSON.stringify([...order].sort()), 'oldest first');
  const theirs = Number(sql(`SELECT count(*) FROM returnees WHERE status = 'pending' AND district IN (${o.districts.map(q).join(',')})`));
  eq(refs.length, theirs, 'every pending record of the officer\'s districts, once');
}, { needs: ['GET /api/records'] });

test('officer opens a record: answers, masked ID, the duplicate panel names only ref, district and status; another district\'s record is "not found"', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  t.allowConsole(/404/);
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const dup = rows(`SELECT a.ref, b.ref, b.district FROM returnees a JOIN returnees b ON a.nid_hash = b.nid_hash AND a.id <> b.id
    WHERE a.district IN (${o.districts.map(q).join(',')}) LIMIT 1`)[0];
  assert(dup, 'the demo data has no shared NID in the officer\'s districts');
  await openRecord(page, dup[0]);
  const id = await page.locator('#id-number').textContent();
  assert(/^[*•x×X\u2022-]*\d{3}$/.test(id.replace(/\s/g, '')) && id.replace(/\D/g, '').length === 3, `ID not masked to its last 3 digits: ${id}`);
  const panel = await page.locator('ul.dups').textContent();
  assert(panel.includes(dup[1]), `duplicate panel lacks ${dup[1]}: ${panel}`);
  await checkLayout(page, 'record');
  const far = rows(`SELECT ref FROM returnees WHERE district NOT IN (${o.districts.map(q).join(',')}) LIMIT 1`)[0][0];
  await page.evaluate((r) => { location.hash = `#/record/${r}`; }, far);
  await page.getByText(strings.en.not_found).waitFor();
}, { needs: ['GET /api/records', 'GET /api/records/{}'] });

test(`officer verifies a record: the SMS reaches the handset after the ${WINDOW_S} s window, not before`, async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const [ref, msisdn] = pendingIn(o.districts);
  const since = await simNow();
  await openRecord(page, ref);
  await page.getByRole('button', { name: strings.en.a_verify, exact: true }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: strings.en.a_verify }).click();
  await statusIs(page, 'verified');
  const t0 = Date.now();
  eq((await handset(msisdn, since, 0)).length, 0, 'an SMS left inside the window');
  const got = await handset(msisdn, since, (WINDOW_S + 15) * 1000);
  assert(got.length >= 1, 'no SMS reached the handset');
  assert(Date.now() - t0 >= (WINDOW_S - 2) * 1000, `the SMS came after ${Date.now() - t0} ms, inside the window`);
  assert(got.some((m) => (m.text || '').includes(ref)), `SMS without the reference: ${JSON.stringify(got.map((m) => m.text))}`);
  eq(sql(`SELECT status FROM returnees WHERE ref = ${q(ref)}`), 'verified', 'row status');
}, { needs: ['GET /api/records/{}', 'POST /api/records/{}/verify'] });

test('officer rejects a record with a reason: the SMS carries the reason\'s label', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const [ref, msisdn, , lang] = pendingIn(o.districts);
  const since = await simNow();
  await openRecord(page, ref);
  await page.getByRole('button', { name: strings.en.a_reject }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel(strings.en.reason).selectOption('not_returnee');
  await dlg.getByLabel(strings.en.note).fill('called twice, works locally');
  await dlg.getByRole('button', { name: strings.en.a_reject.replace('…', '') }).click();
  await statusIs(page, 'rejected');
  eq(sql(`SELECT status || ':' || reject_reason FROM returnees WHERE ref = ${q(ref)}`), 'rejected:not_returnee', 'row');
  const got = await handset(msisdn, since, (WINDOW_S + 15) * 1000);
  const label = lang === 'en' ? 'not a returnee' : 'প্রবাসফেরত নন';
  assert(got.some((m) => (m.text || '').includes(ref) && (m.text || '').includes(label)), `no SMS with ${ref} and "${label}": ${JSON.stringify(got.map((m) => m.text))}`);
}, { needs: ['GET /api/records/{}', 'POST /api/records/{}/reject'] });

test('an undo within the window restores the record and nothing is sent', async (t) => {
  const o = officer('officer-dhaka');
  const page = await t.page();
  await signIn(page, 'officer-dhaka', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const [ref, msisdn] = pendingIn(o.districts);
  const since = await simNow();
  await openRecord(page, ref);
  await page.getByRole('button', { name: strings.en.a_verify, exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: strings.en.a_verify }).click();
  await statusIs(page, 'verified');
  await page.getByRole('button', { name: strings.en.a_undo }).click();
  await statusIs(page, 'pending');
  eq(sql(`SELECT status FROM returnees WHERE ref = ${q(ref)}`), 'pending', 'row status after undo');
  await new Promise((r) => setTimeout(r, (WINDOW_S + 6) * 1000));
  eq((await handset(msisdn, since, 0)).length, 0, 'an SMS was sent after the undo');
}, { needs: ['GET /api/records/{}', 'POST /api/records/{}/verify', 'POST /api/records/{}/undo'] });

test('two officers decide the same record at once: the second sees "changed by someone else" and the new state', async (t) => {
  const o = officer('officer-dhaka');
  const a = await t.page();
  const b = await t.page();
  t.allowConsole(/409/);
  await signIn(a, 'officer-dhaka', o.password);
  await signIn(b, 'officer-dhaka', o.password);
  await a.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  await b.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const [ref] = pendingIn(o.districts);
  await openRecord(a, ref);
  await openRecord(b, ref);
  await a.getByRole('button', { name: strings.en.a_verify, exact: true }).click();
  await a.getByRole('dialog').getByRole('button', { name: strings.en.a_verify }).click();
  await statusIs(a, 'verified');
  await b.getByRole('button', { name: strings.en.a_reject }).click();
  await b.getByRole('dialog').getByLabel(strings.en.reason).selectOption('test');
  await b.getByRole('dialog').getByRole('button', { name: strings.en.a_reject.replace('…', '') }).click();
  await b.getByText(strings.en.conflict).waitFor();
  await statusIs(b, 'verified');
  // the message stays: nothing after the conflict replaces it
  await new Promise((r) => setTimeout(r, 1500));
  eq((await b.locator('#toast').textContent()).replace('×', '').trim(), strings.en.conflict, 'the conflict message was replaced');
}, { needs: ['GET /api/records/{}', 'POST /api/records/{}/verify', 'POST /api/records/{}/reject'] });

test('officer asks for more information: the SMS names the office phone; corrects and verifies another (the correction in its activity); reveals an ID number with a reason (audited)', async (t) => {
  const o = officer('officer-rajshahi');
  const page = await t.page();
  await signIn(page, 'officer-rajshahi', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();

  const [ref, msisdn] = pendingIn(o.districts);
  const since = await simNow();
  await openRecord(page, ref);
  await page.getByRole('button', { name: strings.en.a_needs_info }).click();
  await page.getByRole('dialog').getByLabel(strings.en.reason).selectOption('documents');
  await page.getByRole('dialog').getByRole('button', { name: strings.en.confirm }).click();
  await statusIs(page, 'needs_info');
  const got = await handset(msisdn, since, (WINDOW_S + 15) * 1000);
  assert(got.some((m) => (m.text || '').includes(ref) && (m.text || '').replace(/[০-৯]/g, (d) => '০১২৩৪৫৬৭৮৯'.indexOf(d)).includes('01700000000')),
    `no needs-info SMS with the office phone: ${JSON.stringify(got.map((m) => m.text))}`);

  const [ref2] = pendingIn(o.districts, `AND need <> 'training'`);
  await openRecord(page, ref2);
  await page.getByRole('button', { name: strings.en.a_correct }).click();
  await page.getByRole('dialog').getByLabel(strings.en.ans_need).selectOption('training');
  await page.getByRole('dialog').getByRole('button', { name: strings.en.save }).click();
  await statusIs(page, 'verified');
  eq(sql(`SELECT need FROM returnees WHERE ref = ${q(ref2)}`), 'training', 'the corrected answer in the row');
  await until(async () => (await page.locator('#activity').textContent()).includes(`${strings.en.ans_need}:`), 5000, 'the correction in the activity');

  const masked = (await page.locator('#id-number').textContent()).trim();
  await page.getByRole('button', { name: strings.en.a_reveal }).click();
  await page.getByRole('dialog').getByLabel(strings.en.reveal_reason).fill('returnee at the counter, checking the card');
  await page.getByRole('dialog').getByRole('button', { name: strings.en.a_reveal.replace('…', '') }).click();
  await until(async () => /^\d{6,}$/.test((await page.locator('#id-number').textContent()).trim()), 5000, 'the full number');
  const full = (await page.locator('#id-number').textContent()).trim();
  eq(full.slice(-3), masked.slice(-3), 'the revealed number ends as the masked one');
  eq(full.length, masked.length, 'as long as the masked one');
  assert(Number(sql(`SELECT count(*) FROM audit_log WHERE action = 'record.reveal' AND target = ${q(ref2)}`)) >= 1, 'no audit row for the reveal');
}, { needs: ['GET /api/records/{}', 'POST /api/records/{}/needs-info', 'POST /api/records/{}/correct', 'POST /api/records/{}/reveal'] });

// RFC 6238 with SHA-1, 30 s, 6 digits, from a base32 secret.
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// The QR code on the page, read back: the SVG drawn on a canvas, its
// pixels decoded with jsQR.
async function readQr(page, selector) {
  const img = await page.evaluate(async (sel) => {
    const svg = document.querySelector(sel);
    const xml = new XMLSerializer().serializeToString(svg);
    const im = new Image();
    im.src = `data:image/svg+xml;base64,${btoa(xml)}`;
    await im.decode();
    const c = document.createElement('canvas');
    c.width = 400;
    c.height = 400;
    const g = c.getContext('2d');
    g.fillStyle = '#fff';
    g.fillRect(0, 0, 400, 400);
    g.drawImage(im, 0, 0, 400, 400);
    return Array.from(g.getImageData(0, 0, 400, 400).data);
  }, selector);
  const code = jsQR(Uint8ClampedArray.from(img), 400, 400);
  return code && code.data;
}

test('admin enrols TOTP from the QR code, signs in with a code, adds an officer who can sign in, sets a new password (the old session ends), changes their districts, disables them (their session ends), and reads it in the audit trail', async (t) => {
  const adm = officer('admin');
  const page = await t.page();
  t.allowConsole(/401/); // signing in without the code first
  if (!routes.has('GET /api/records')) t.allowConsole(/404/); // the queue page, before the records API
  await signIn(page, 'admin', adm.password);
  await page.getByRole('heading', { level: 1, name: strings.en.totp_title }).waitFor();
  await page.getByRole('button', { name: strings.en.totp_start }).click();
  await page.locator('#totp-qr svg').waitFor();
  await page.waitForLoadState('networkidle');
  const weight = [...page.bytes.values()].reduce((a, b) => a + b, 0);
  assert(weight <= PAGE_MAX, `sign-in + TOTP page with the QR library weigh ${weight} bytes`);
  await checkLayout(page, 'totp');
  const uri = await readQr(page, '#totp-qr svg');
  assert(uri && uri.startsWith('otpauth://totp/'), `QR code does not read as an otpauth URI: ${uri}`);
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  eq(new URL(uri).searchParams.get('secret'), secret, 'the QR code\'s secret is the one shown');
  await page.getByLabel(strings.en.totp_code).fill(totp(secret));
  await page.getByRole('button', { name: strings.en.totp_confirm }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();

  // signing in again needs the code
  await page.getByRole('button', { name: strings.en.logout }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.login_title }).waitFor();
  await signIn(page, 'admin', adm.password);
  await page.getByLabel(strings.en.otp).waitFor();
  // a new 30-s step: the code just used is not accepted twice
  await until(async () => totp(secret) !== totp(secret, Date.now() - 30000) || null, 1000, 'a code');
  await new Promise((r) => setTimeout(r, 30000 - (Date.now() % 30000) + 500));
  await page.getByLabel(strings.en.otp).fill(totp(secret));
  await page.getByRole('button', { name: strings.en.login_submit }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();

  // add an officer for Sylhet
  const user = `o${Date.now() % 1000000}`;
  const pw = `pw-${Math.random().toString(36).slice(2)}-long`;
  await page.getByRole('link', { name: strings.en.nav_officers }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.officers_title }).waitFor();
  await checkLayout(page, 'officers');
  const form = page.locator('#add-officer');
  await form.getByLabel(strings.en.o_username).fill(user);
  await form.getByLabel(strings.en.o_role).selectOption('officer');
  await form.getByLabel(strings.en.o_districts).selectOption(['BD-60']);
  await form.getByLabel(strings.en.o_password).fill(pw);
  await form.getByRole('button', { name: strings.en.o_add }).click();
  await page.locator(`tr[data-user="${user}"]`).waitFor();
  eq(sql(`SELECT role FROM officers WHERE username = ${q(user)}`), 'officer', 'the officer row');

  const p2 = await t.page();
  await signIn(p2, user, pw);
  await p2.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();

  // a new password: the open session ends, the new one signs in
  const pw2 = `${pw}-2`;
  await page.locator(`tr[data-user="${user}"]`).getByRole('button', { name: strings.en.o_set_password }).click();
  await page.getByRole('dialog').getByLabel(strings.en.o_password).fill(pw2);
  await page.getByRole('dialog').getByRole('button', { name: strings.en.save }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  await p2.reload();
  await p2.getByText(strings.en.session_ended).waitFor();
  await signIn(p2, user, pw2);
  await p2.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();

  // give the officer a second district, then disable the account: its
  // open session ends at once
  await page.locator(`tr[data-user="${user}"]`).getByRole('button', { name: strings.en.o_edit_districts }).click();
  await page.getByRole('dialog').getByLabel(strings.en.o_districts).selectOption(['BD-60', 'BD-61']);
  await page.getByRole('dialog').getByRole('button', { name: strings.en.save }).click();
  await until(() => sql(`SELECT string_agg(district, ',' ORDER BY district) FROM officer_districts d JOIN officers o ON o.id = d.officer_id
    WHERE o.username = ${q(user)}`) === 'BD-60,BD-61', 10000, 'the new districts in officer_districts');
  await page.locator(`tr[data-user="${user}"]`).getByRole('button', { name: strings.en.o_disable }).click();
  await page.getByRole('dialog').getByRole('button', { name: strings.en.o_disable }).click();
  await page.locator(`tr[data-user="${user}"]`).getByText(strings.en.o_disabled).waitFor();
  await p2.reload(); // its next call (GET /api/lists) is refused: 401
  await p2.getByRole('heading', { level: 1, name: strings.en.login_title }).waitFor();
  await p2.getByText(strings.en.session_ended).waitFor();

  await page.getByRole('link', { name: strings.en.nav_audit }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.audit_title }).waitFor();
  await checkLayout(page, 'audit');
  await page.getByLabel(strings.en.f_actor).fill(user);
  await page.getByRole('button', { name: strings.en.apply }).click();
  await until(async () => (await page.locator('table.audit tbody').textContent()).includes('login'), 10000, 'the new officer\'s login in the audit');
  await page.goto('/console/#/audit');
  await until(async () => (await page.locator('table.audit tbody').textContent()).includes(user), 10000, 'the officer\'s creation in the audit');
}, { needs: ['POST /api/totp/enrol', 'POST /api/totp/confirm', 'GET /api/officers', 'POST /api/officers', 'GET /api/audit'] });

test('the same in Bangla: an officer signs in, opens a record and rejects it, every label in Bangla', async (t) => {
  const o = officer('officer-chattogram');
  const page = await t.page({ locale: 'bn-BD' });
  await signIn(page, 'officer-chattogram', o.password, 'bn');
  await page.getByRole('heading', { level: 1, name: strings.bn.queue_title }).waitFor();
  eq(await page.getAttribute('html', 'lang'), 'bn', 'html lang');
  const [ref, msisdn, , lang] = pendingIn(o.districts);
  const since = await simNow();
  await openRecord(page, ref, 'bn');
  await page.getByRole('button', { name: strings.bn.a_reject }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel(strings.bn.reason).selectOption('unreachable');
  await dlg.getByRole('button', { name: strings.bn.a_reject.replace('…', '') }).click();
  await statusIs(page, 'rejected', 'bn');
  const got = await handset(msisdn, since, (WINDOW_S + 15) * 1000);
  const label = lang === 'en' ? 'could not reach you' : 'যোগাযোগ করা যায়নি';
  assert(got.some((m) => (m.text || '').includes(ref) && (m.text || '').includes(label)), `no SMS with ${ref} and "${label}"`);
}, { needs: ['GET /api/records', 'GET /api/records/{}', 'POST /api/records/{}/reject'] });

for (const width of [360, 1366]) {
  test(`signed in at ${width} px: the queue and a record are readable (labels, no sideways scroll); each view under 200 KB from an empty cache`, async (t) => {
    const o = officer('officer-khulna');
    const page = await t.page({ viewport: { width, height: 740 } });
    await signIn(page, 'officer-khulna', o.password);
    await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
    await page.locator('table.queue tbody tr').first().waitFor();
    await page.waitForLoadState('networkidle');
    await checkLayout(page, `queue ${width}`);
    let total = [...page.bytes.values()].reduce((a, b) => a + b, 0);
    assert(total <= PAGE_MAX, `login + queue weigh ${total} bytes`);
    await page.locator('table.queue tbody tr a').first().click();
    await page.locator('#rec-status').waitFor();
    await page.waitForLoadState('networkidle');
    await checkLayout(page, `record ${width}`);
    total = [...page.bytes.values()].reduce((a, b) => a + b, 0);
    assert(total <= PAGE_MAX, `login + queue + record weigh ${total} bytes`);
  }, { needs: ['GET /api/records', 'GET /api/records/{}'] });
}

test('keyboard only: from the queue to a decision dialog and out again, focus visible and kept inside the dialog', async (t) => {
  const o = officer('officer-khulna');
  const page = await t.page();
  await signIn(page, 'officer-khulna', o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  const first = page.locator('table.queue tbody tr a').first();
  await first.focus();
  await page.keyboard.press('Enter');
  await page.locator('#rec-status').waitFor();
  await page.locator('#act-reject').focus();
  await page.keyboard.press('Enter');
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    assert(await page.evaluate(() => !!document.activeElement.closest('dialog')), 'focus left the dialog');
  }
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
}, { needs: ['GET /api/records', 'GET /api/records/{}'] });

// ---- programme notices ------------------------------------------------------
// officer-mymensingh (BD-21, BD-34) composes: no other test uses those
// districts.  Verified returnees are added for each run (the demo records
// are pending, and notices go to verified ones).  An admin made here
// approves (its TOTP enrolled through the page).

const NT_OFFICER = 'officer-mymensingh';
const NT = {}; // what one test leaves for the next: id, code, msisdns
const NT_ROUTES = ['GET /api/notices', 'POST /api/notices', 'PUT /api/notices/{}', 'GET /api/notices/{}/preview'];

function ntAddReturnees() {
  const base = (Date.now() % 89000) * 1000;
  const made = rows(`WITH x AS (INSERT INTO returnees (msisdn, sex, birth_year, district, country, skills, lang, status)
    SELECT '88017' || lpad((${base} + g)::text, 8, '0'), CASE WHEN g % 2 = 0 THEN 'f' ELSE 'm' END, 1980 + g,
           CASE WHEN g <= 9 THEN 'BD-21' ELSE 'BD-34' END, 'SA', '{welder}',
           CASE WHEN g % 3 = 0 THEN 'en' ELSE 'bn' END, 'verified'
      FROM generate_series(1, 12) g RETURNING msisdn, lang) SELECT * FROM x`);
  eq(made.length, 12, 'returnees added');
  return made;
}

// How many verified returnees SQL finds in districts (and sex), opted-out
// numbers left out.
function ntCount(districts, sex) {
  return Number(sql(`SELECT count(*) FROM returnees r WHERE status = 'verified'
    AND district IN (${districts.map(q).join(',')}) ${sex ? `AND sex = ${q(sex)}` : ''}
    AND NOT EXISTS (SELECT 1 FROM sms_optout o WHERE o.msisdn = r.msisdn AND o.opted_out)`));
}

// Messages of a handset with their concatenated parts joined (UDH
// 05 00 03 ref total seq), in order.
function joinParts(items) {
  const out = [];
  const open = new Map();
  for (const m of items) {
    const u = /^050003([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(m.udh_hex || '');
    if (!u) {
      out.push({ text: m.text || '' });
      continue;
    }
    let msg = open.get(u[1]);
    if (!msg) {
      msg = { text: '', parts: [], total: parseInt(u[2], 16) };
      open.set(u[1], msg);
      out.push(msg);
    }
    msg.parts[parseInt(u[3], 16) - 1] = m.text || '';
    msg.text = msg.parts.join('');
    if (msg.parts.filter((x) => x !== undefined).length === msg.total) open.delete(u[1]);
  }
  return out;
}

async function eligibleIs(page, n, what) {
  await until(async () => (await page.locator('#nt-eligible').textContent()).trim() === String(n), 10000, `${what}: preview count ${n}`);
}

// A new admin, signed in on page with a second factor enrolled.
async function ntAdmin(page) {
  const user = `ntc-admin-${Date.now() % 100000}`;
  const pw = `Jamuna-Ghat-${Date.now() % 1000}-Boat`;
  execFileSync(process.env.REMIGATE_BIN || join(root, 'build', 'remigate'),
    ['officer', 'add', '--username', user, '--role', 'admin', '-c', env.REMIGATE_CONF], { input: `${pw}\n`, encoding: 'utf8' });
  await signIn(page, user, pw);
  await page.getByRole('heading', { level: 1, name: strings.en.totp_title }).waitFor();
  await page.getByRole('button', { name: strings.en.totp_start }).click();
  await page.locator('#totp-secret').waitFor();
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  await page.getByLabel(strings.en.totp_code).fill(totp(secret));
  await page.getByRole('button', { name: strings.en.totp_confirm }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  return user;
}

async function ntFillProgramme(page, code, lang = 'en') {
  const s = strings[lang];
  await page.getByLabel(s.nt_title_bn, { exact: true }).fill('ওয়েল্ডিং প্রশিক্ষণ');
  await page.getByLabel(s.nt_title_en, { exact: true }).fill('Welding course');
  await page.getByLabel(s.nt_deadline).fill('2026-12-31');
  await page.getByLabel(s.nt_phone).fill('01711000000');
  await page.getByLabel(s.nt_reply_code).fill(code);
  await page.getByLabel(s.nt_text_bn, { exact: true }).fill('টিটিসি ময়মনসিংহে ওয়েল্ডিং প্রশিক্ষণ। আগ্রহী হলে {code} লিখে পাঠান, শেষ তারিখ {deadline}। ফোন {phone}');
  await page.getByLabel(s.nt_text_en_opt).fill('Welding course at TTC Mymensingh. Reply {code} by {deadline}. Call {phone}');
}

test('notices: an officer composes a notice; the live preview (count, districts with <5, both texts with the STOP footer, parts, cost) follows the audience as it changes; the officer submits it and cannot approve it', async (t) => {
  const o = officer(NT_OFFICER);
  const made = ntAddReturnees();
  const page = await t.page();
  t.allowConsole(/403/); // the officer's own approval, refused
  await signIn(page, NT_OFFICER, o.password);
  await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
  await page.getByRole('link', { name: strings.en.nav_notices }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.nt_list_title }).waitFor();
  await page.getByRole('link', { name: strings.en.nt_new }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.nt_compose_title }).waitFor();
  const code = `M${Date.now() % 100000}`;
  await ntFillProgramme(page, code);
  // no district yet: the preview says what is missing
  await until(async () => (await page.locator('#nt-save').textContent()).includes(strings.en.nt_need_district), 5000, 'asks for a district');
  // an officer is offered only their own districts
  eq((await page.locator('#nt-districts input').evaluateAll((els) => els.map((e) => e.value))).sort().join(), o.districts.slice().sort().join(), 'districts offered');

  await page.locator('#nt-districts-BD-21').check();
  await eligibleIs(page, ntCount(['BD-21']), 'BD-21');
  eq((await page.locator('#nt-by-district tr[data-district="BD-21"] td').textContent()).trim(), String(ntCount(['BD-21'])), 'BD-21 in the breakdown');
  const id = Number((await until(async () => /#\/compose\/(\d+)$/.exec(page.url()), 5000, 'the draft in the address'))[1]);

  await page.locator('#nt-districts-BD-34').check();
  await eligibleIs(page, ntCount(['BD-21', 'BD-34']), 'BD-21 and BD-34');
  // 3 people in BD-34 on a fresh stack (more after reruns on one stack)
  const small = ntCount(['BD-34']);
  eq((await page.locator('#nt-by-district tr[data-district="BD-34"] td').textContent()).trim(), small < 5 ? strings.en.nt_lt5 : String(small), 'BD-34 shown as fewer than 5');

  await page.locator('#nt-sexes-f').check();
  await eligibleIs(page, ntCount(['BD-21', 'BD-34'], 'f'), 'women only');
  await page.locator('#nt-sexes-f').uncheck();
  const all = ntCount(['BD-21', 'BD-34']);
  await eligibleIs(page, all, 'everyone again');

  const bn = (await page.locator('#nt-pv-bn').textContent()).trim();
  assert(bn.includes(code) && bn.includes('31-12-2026') && bn.includes('01711000000') && bn.endsWith('বন্ধ করতে বন্ধ লিখুন'), `Bangla text: ${bn}`);
  eq((await page.locator('#nt-pv-en').textContent()).trim(), `Welding course at TTC Mymensingh. Reply ${code} by 31-12-2026. Call 01711000000\nReply STOP to stop`, 'English text');
  assert((await page.locator('#nt-parts').textContent()).includes('UCS-2') === false, 'the English text is GSM-7');
  assert(/\d/.test(await page.locator('#nt-parts').textContent()), 'parts shown');
  assert((await page.locator('#nt-cost').textContent()).includes(String(all)) || /\d/.test(await page.locator('#nt-cost').textContent()), 'cost shown');
  // the draft in the database is the one on the screen
  eq(sql(`SELECT array_to_string(districts, ',') || '|' || cardinality(sexes) FROM notices WHERE id = ${id}`), 'BD-21,BD-34|0', 'the saved audience');

  await page.getByRole('button', { name: strings.en.nt_a_submit }).click();
  await page.getByRole('heading', { level: 1, name: strings.en.nt_title.replace('{id}', String(id)).replace('{title}', 'Welding course') }).waitFor();
  eq((await page.locator('#nt-state').textContent()).trim(), strings.en.nt_s_submitted, 'state on the page');
  eq(await page.locator('#nt-approve').count(), 0, 'an approve button for the author');
  await page.locator('#nt-four-eyes').waitFor();
  const token = await page.evaluate(() => sessionStorage.getItem('remigate.csrf'));
  const r = await page.request.post(`/api/notices/${id}/approve`, { headers: { 'X-CSRF-Token': token }, data: {} });
  eq(r.status(), 403, 'the officer approving through the API');
  eq(sql(`SELECT state FROM notices WHERE id = ${id}`), 'submitted', 'still submitted');
  const acts = sql(`SELECT string_agg(DISTINCT action, ',' ORDER BY action) FROM audit_log WHERE target = '${id}' AND action LIKE 'notice.%' AND actor = ${q(NT_OFFICER)}`);
  eq(acts, 'notice.create,notice.submit,notice.update', 'audited');
  Object.assign(NT, { id, code, made, all });
}, { needs: NT_ROUTES });

test('notices: an admin cannot approve their own notice (four eyes) but approves the officer\'s with the vetting reference; the report shows every recipient\'s state once the dispatcher has sent through Kannel (delivered, and one the operator could not deliver, by its reason, in the delivery rate); an interested reply is listed and the CSV downloads (audited)', async (t) => {
  assert(NT.id, 'the compose test left no notice');
  const page = await t.page();
  t.allowConsole(/403/); // the admin's own approval, refused
  const admin = await ntAdmin(page);

  // the admin's own notice
  await page.evaluate(() => { location.hash = '#/compose'; });
  await page.getByRole('heading', { level: 1, name: strings.en.nt_compose_title }).waitFor();
  await ntFillProgramme(page, `A${Date.now() % 100000}`);
  await page.locator('#nt-districts-BD-34').check();
  await eligibleIs(page, ntCount(['BD-34']), 'the admin\'s notice');
  await page.getByRole('button', { name: strings.en.nt_a_submit }).click();
  await page.locator('#nt-four-eyes').waitFor();
  eq(await page.locator('#nt-approve').count(), 0, 'an approve button for the author');
  const own = Number(/#\/notice\/(\d+)/.exec(page.url())[1]);
  const token = await page.evaluate(() => sessionStorage.getItem('remigate.csrf'));
  const r = await page.request.post(`/api/notices/${own}/approve`, { headers: { 'X-CSRF-Token': token }, data: {} });
  eq(r.status(), 403, 'the author approving through the API');
  eq((await r.json()).error, 'four_eyes', 'refused for four eyes');
  // ... and may cancel it
  await page.locator('#nt-cancel').click();
  await page.getByRole('dialog').getByRole('button', { name: strings.en.nt_a_cancel }).click();
  await until(async () => (await page.locator('#nt-state').textContent()).trim() === strings.en.nt_s_cancelled, 10000, 'cancelled');
  eq(sql(`SELECT state FROM notices WHERE id = ${own}`), 'cancelled', 'cancelled in the database');

  // the officer's notice: what approval would queue, shown before it
  await page.evaluate((id) => { location.hash = `#/notice/${id}`; }, NT.id);
  await until(async () => (await page.locator('#nt-now #nt-eligible').textContent()).trim() === String(NT.all), 10000, 'the count before approval');

  // the officer's notice
  // one recipient's operator reports it undeliverable (the simulator's
  // receipt rule for that number alone)
  const [lost] = NT.made[1];
  const rr = await fetch(`${SIM}/receipts`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rules: [{ msisdn: lost, stat: 'UNDELIV' }] }) });
  assert(rr.ok, `receipt rule set (${rr.status})`);
  const since = await simNow();
  await page.locator('#nt-approve').click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel(strings.en.nt_vetting).fill('BTRC-TEST-17');
  await dlg.getByRole('button', { name: strings.en.nt_a_approve }).click();
  await dlg.waitFor({ state: 'detached' });
  eq(sql(`SELECT (SELECT username FROM officers WHERE id = approver_id) || '|' || vetting_ref || '|' || audience FROM notices WHERE id = ${NT.id}`),
    `${admin}|BTRC-TEST-17|${NT.all}`, 'approver, vetting reference, audience frozen at the preview\'s count');

  // the report follows the sending on its own
  const deliveredRow = page.locator('#nt-counts tr[data-state="delivered"] td');
  await until(async () => (await deliveredRow.count()) && (await deliveredRow.textContent()).trim() === String(NT.all - 1), 90000, `${NT.all - 1} delivered on the report`);
  await until(async () => (await page.locator('#nt-state').textContent()).trim() === strings.en.nt_s_completed, 30000, 'completed');
  await fetch(`${SIM}/receipts`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rules: [] }) });
  eq((await page.locator('#nt-counts tr[data-state="undelivered"] td').textContent()).trim(), '1', 'one not delivered');
  eq((await page.locator('#nt-reasons tr[data-reason="undelivered:UNDELIV"] th').textContent()).trim(), `${strings.en.nt_r_undelivered}: ${strings.en.nt_why_undeliv}`, 'the failure by its reason');
  eq((await page.locator('#nt-reasons tr[data-reason="undelivered:UNDELIV"] td').textContent()).trim(), '1', 'one failure of that reason');
  eq((await page.locator('#nt-rate').textContent()).trim(), `${(((NT.all - 1) / NT.all) * 100).toFixed(1)} %`, 'delivery rate');
  eq(sql(`SELECT state || ':' || reason FROM notice_outbox WHERE notice_id = ${NT.id} AND msisdn = ${q(lost)}`), 'undelivered:UNDELIV', 'the row in the database');
  eq((await page.locator('#nt-total').textContent()).trim(), String(NT.all), 'recipients on the report');
  // each recipient got it once, in their language
  for (const [msisdn, lang] of NT.made) {
    const got = joinParts(await handset(msisdn, since, 0)).filter((m) => m.text.includes(NT.code));
    eq(got.length, 1, `SMS of the notice at ${msisdn}`);
    assert(lang === 'en' ? got[0].text.endsWith('Reply STOP to stop') : got[0].text.endsWith('বন্ধ করতে বন্ধ লিখুন'), `${msisdn} (${lang}): ${got[0].text}`);
  }

  // an interested reply, by SMS from a handset
  const [who] = NT.made[0];
  const mo = await fetch(`${SIM}/sms`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ msisdn: who, text: NT.code.toLowerCase() }) });
  assert(mo.ok, `the simulator took the reply (${mo.status})`);
  await until(async () => sql(`SELECT count(*) FROM notice_interest WHERE notice_id = ${NT.id}`) === '1', 20000, 'the interest recorded');
  await page.reload();
  await until(async () => (await page.locator('#nt-interested').textContent()).trim() === '1', 10000, 'interested on the report');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#nt-csv').click()]);
  const csv = readFileSync(await dl.path(), 'utf8');
  assert(csv.startsWith('\uFEFFnotice,ref,msisdn,district,lang,said,at\r\n'), `CSV header: ${JSON.stringify(csv.slice(0, 60))}`);
  const lines = csv.trim().split('\r\n');
  eq(lines.length, 2, 'one interested person');
  assert(lines[1].includes(`"${who}"`) && lines[1].includes(`"${NT.id}"`), `CSV line: ${lines[1]}`);
  eq(sql(`SELECT count(*) FROM audit_log WHERE action = 'notice.interested_export' AND target = '${NT.id}' AND actor = ${q(admin)} AND (detail->>'rows')::int = 1`), '1', 'the download audited');
}, { needs: [...NT_ROUTES, 'POST /api/notices/{}/approve', 'GET /api/notices/{}/interested.csv'] });

test('notices in Bangla: the list, and the report of the sent notice with every label in Bangla; pause and cancel offered by state', async (t) => {
  assert(NT.id, 'the compose test left no notice');
  const o = officer(NT_OFFICER);
  const page = await t.page();
  await signIn(page, NT_OFFICER, o.password, 'bn');
  await page.getByRole('heading', { level: 1, name: strings.bn.queue_title }).waitFor();
  await page.getByRole('link', { name: strings.bn.nav_notices }).click();
  await page.getByRole('heading', { level: 1, name: strings.bn.nt_list_title }).waitFor();
  await page.locator(`tr[data-id="${NT.id}"] a`).click();
  await page.getByRole('heading', { level: 2, name: strings.bn.nt_report }).waitFor();
  eq((await page.locator('#nt-state').textContent()).trim(), strings.bn.nt_s_completed, 'state in Bangla');
  const bnDigits = (n) => String(n).replace(/[0-9]/g, (d) => '০১২৩৪৫৬৭৮৯'[d]);
  eq((await page.locator('#nt-counts tr[data-state="delivered"] th').textContent()).trim(), strings.bn.nt_r_delivered, 'delivered in Bangla');
  eq((await page.locator('#nt-counts tr[data-state="delivered"] td').textContent()).trim(), bnDigits(NT.all - 1), 'count in Bangla digits (one was not delivered)');
  await page.getByRole('link', { name: strings.bn.nt_csv }).waitFor();
  eq(await page.locator('#nt-cancel').count(), 0, 'cancel offered for a completed notice');
  const text = await page.locator('main').textContent();
  for (const k of ['nt_report', 'nt_by_state', 'nt_programme', 'nt_audience_h', 'nt_texts']) assert(text.includes(strings.bn[k]), `no ${k} in Bangla`);
  assert(!/\b(Report|Recipients|Delivered|Programme)\b/.test(text), 'English words on the Bangla page');
}, { needs: NT_ROUTES });

for (const width of [360, 1366]) {
  test(`notices at ${width} px: the list, the compose form with its preview and a notice's report are readable (every control labelled, no sideways scroll), each under 200 KB; the compose form works from the keyboard`, async (t) => {
    const o = officer(NT_OFFICER);
    const page = await t.page({ viewport: { width, height: 740 } });
    await signIn(page, NT_OFFICER, o.password);
    await page.getByRole('heading', { level: 1, name: strings.en.queue_title }).waitFor();
    page.bytes.clear();
    await page.evaluate(() => { location.hash = '#/notices'; });
    await page.getByRole('heading', { level: 1, name: strings.en.nt_list_title }).waitFor();
    await page.waitForLoadState('networkidle');
    await checkLayout(page, `notices ${width}`);
    await page.evaluate(() => { location.hash = '#/compose'; });
    await page.getByRole('heading', { level: 1, name: strings.en.nt_compose_title }).waitFor();
    await checkLayout(page, `compose ${width}`);
    // keyboard: Tab from the kind to the title, type, and tick a district with Space
    await page.locator('#nt-kind').focus();
    await page.keyboard.press('Tab');
    eq(await page.evaluate(() => document.activeElement.id), 'nt-title-bn', 'Tab from the kind');
    await page.keyboard.type('কীবোর্ড');
    await page.locator('#nt-districts-BD-21').focus();
    await page.keyboard.press('Space');
    assert(await page.locator('#nt-districts-BD-21').isChecked(), 'Space ticks a district');
    if (NT.id) {
      await page.evaluate((id) => { location.hash = `#/notice/${id}`; }, NT.id);
      await page.getByRole('heading', { level: 2, name: strings.en.nt_report }).waitFor();
      await page.waitForLoadState('networkidle');
      await checkLayout(page, `report ${width}`);
    }
    const total = [...page.bytes.values()].reduce((a, b) => a + b, 0);
    assert(total <= PAGE_MAX, `notices pages weigh ${total} bytes`);
  }, { needs: NT_ROUTES });
}

const ok = await run('browser', base, routes);
process.exit(ok ? 0 : 1);
