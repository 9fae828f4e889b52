// lib.mjs -- the browser tests' small runner and helpers.
//
//   test(name, async (t) => {...})   one test; t.page() opens a page in a
//                                    fresh browser context (its own cookies
//                                    and storage) that records console
//                                    errors, failed requests and every
//                                    response's size
//   run(label)                       runs them in order, prints
//                                    "ok   - name" / "FAIL - name" and
//                                    "label: N passed, N failed"
// A test fails by throwing (assert or a Playwright timeout).  Every page a
// test opened is checked after it: no console error, no uncaught
// exception, no CSP violation, unless the test said which ones it expects
// with t.allowConsole(regexp).

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const tests = [];
// opts.needs: API routes ("GET /api/records") the test drives; when the
// daemon's route table (`remigate api-routes`, passed to run()) lacks one,
// the test is reported as skipped, naming what is missing.
export function test(name, fn, opts = {}) {
  tests.push({ name, fn, needs: opts.needs || [] });
}

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// KEY=VALUE lines of scripts/stack's stack.env (the shell quotes removed).
export function readEnv(path) {
  const env = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_]+)=(.*)$/);
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg || 'assertion failed');
}

export function eq(got, want, msg) {
  if (got !== want) throw new Error(`${msg || 'not equal'}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// Poll fn until it returns a truthy value, at most ms; returns it.
export async function until(fn, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

class T {
  constructor(browser, base) {
    this.browser = browser;
    this.base = base;
    this.contexts = [];
    this.problems = [];
    this.allowed = [];
  }

  allowConsole(re) {
    this.allowed.push(re);
  }

  // A page in a new context; opts: viewport {width, height}, locale.
  async page(opts = {}) {
    const ctx = await this.browser.newContext({
      baseURL: this.base,
      viewport: opts.viewport || { width: 1366, height: 800 },
      locale: opts.locale || 'en-GB',
      timezoneId: 'Asia/Dhaka',
    });
    this.contexts.push(ctx);
    ctx.setDefaultTimeout(opts.timeout || 10000);
    const page = await ctx.newPage();
    page.bytes = new Map(); // url -> body bytes, for page weight
    page.on('console', (m) => {
      if (m.type() === 'error') this.problems.push({ text: m.text(), url: page.url() });
    });
    page.on('pageerror', (e) => this.problems.push({ text: `uncaught: ${e.message}`, url: page.url() }));
    page.on('response', async (res) => {
      try {
        const b = await res.body();
        page.bytes.set(res.url(), b.length);
      } catch {
        // redirects and 304s have no body
      }
    });
    return page;
  }

  async close() {
    for (const c of this.contexts) await c.close().catch(() => {});
    const bad = this.problems.filter((p) => !this.allowed.some((re) => re.test(p.text)));
    if (bad.length) throw new Error(`console errors: ${bad.map((p) => `${p.text} (${p.url})`).join('; ')}`);
  }
}

export async function run(label, base, routes) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const only = process.env.BROWSER_ONLY ? new RegExp(process.env.BROWSER_ONLY) : null;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  for (const { name, fn, needs } of tests) {
    if (only && !only.test(name)) continue;
    const missing = routes ? needs.filter((r) => !routes.has(r)) : [];
    if (missing.length) {
      skipped++;
      console.log(`skip - ${name} (the daemon has no ${missing.join(', ')})`);
      continue;
    }
    const t = new T(browser, base);
    const t0 = Date.now();
    try {
      await fn(t);
      await t.close();
      passed++;
      console.log(`ok   - ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL - ${name}`);
      for (const line of String((e && e.stack) || e).split('\n').slice(0, 8)) console.log(`#   ${line}`);
      await t.close().catch(() => {});
    }
  }
  await browser.close();
  console.log(`${label}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return failed === 0 && passed > 0;
}
