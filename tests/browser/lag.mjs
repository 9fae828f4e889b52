// lag.mjs -- the dashboard's line about a replica, in a real browser, for
// tests/integration/test_pg_ha.sh (which runs it while the standby's replay
// is paused, after it resumed, and after a failover):
//
//   node tests/browser/lag.mjs BASE USER PASSWORD
//
// signs in at BASE/console/ (English), opens the dashboard (#/stats, count
// by channel), waits for its total and prints one line of JSON:
// {"total": "...", "lag": text of #stat-lag or null when the page has
// none}.  Exit 1 with the reason on stderr when the page does not get
// there.  CHROMIUM: the browser (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { strings } from '../../web/js/strings.js';

const [base, user, password] = process.argv.slice(2);
if (!base || !user || !password) {
  console.error('usage: node tests/browser/lag.mjs BASE USER PASSWORD');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
try {
  const page = await (await browser.newContext({ baseURL: base })).newPage();
  page.setDefaultTimeout(20000);
  await page.goto('/console/');
  await page.locator('#lang').selectOption('en');
  await page.getByLabel(strings.en.username).fill(user);
  await page.getByLabel(strings.en.password).fill(password);
  await page.getByRole('button', { name: strings.en.login_submit }).click();
  await page.waitForFunction(() => !location.hash.startsWith('#/login'));
  await page.evaluate(() => { location.hash = '#/stats?dims=channel'; });
  await page.getByRole('heading', { level: 1, name: strings.en.st_title }).waitFor();
  await page.locator('#stat-total').waitFor();
  const total = (await page.locator('#stat-total').textContent()).trim();
  const lag = (await page.locator('#stat-lag').count()) ? (await page.locator('#stat-lag').textContent()).trim() : null;
  console.log(JSON.stringify({ total, lag }));
} catch (e) {
  console.error(`lag.mjs: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
