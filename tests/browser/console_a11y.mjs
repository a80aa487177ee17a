// The console's accessibility and layout in Chromium, on a phone (375 px) and a desktop: every
// main page is audited with axe-core (WCAG 2.1 A and AA rules), must not scroll sideways, and
// must not shift its layout when its data arrives (Cumulative Layout Shift, as browsers measure
// it); logging in and reaching every page works with the keyboard alone. Times are shown in the
// viewer's time zone (the context runs in Pacific/Auckland). Prints one JSON report.
//
// Environment: OPENVOD_BASE, OPENVOD_USERNAME, OPENVOD_PASSWORD (an admin), OPENVOD_ASSET (a
// ready video), OPENVOD_SCREENSHOTS, CHROMIUM.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { launch, watchProblems } from './lib.mjs';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
const base = process.env.OPENVOD_BASE;
const shots = process.env.OPENVOD_SCREENSHOTS;
mkdirSync(shots, { recursive: true });

// Sums layout shifts not caused by input, from the start of the page's life.
const watchShifts = () => {
  window.__cls = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
  }).observe({ type: 'layout-shift', buffered: true });
};

const pages = [
  { name: 'videos', hash: '#/videos', ready: '.row[data-status="ready"] img' },
  { name: 'video', hash: `#/videos/${process.env.OPENVOD_ASSET}`, ready: '#player' },
  { name: 'settings', hash: '#/settings', ready: '#endpoints .empty' },
  { name: 'recordings', hash: '#/recordings', ready: '#migration .empty' },
];

const browser = await launch();
const report = { steps: [], audits: {} };
try {
  for (const [label, viewport] of [['phone', { width: 375, height: 740 }], ['desktop', { width: 1280, height: 800 }]]) {
    // bypassCSP lets axe-core be injected; the console's own CSP is checked by the other tests.
    const context = await browser.newContext({ viewport, timezoneId: 'Pacific/Auckland', locale: 'en-GB', bypassCSP: true });
    await context.addInitScript(watchShifts);
    const page = await context.newPage();
    const problems = watchProblems(page, /status of 401/);

    // Log in with the keyboard alone: the username field has focus, Tab moves on, Enter submits.
    await page.goto(`${base}/console/`);
    await page.locator('#username:focus').waitFor();
    await page.keyboard.type(process.env.OPENVOD_USERNAME);
    await page.keyboard.press('Tab');
    await page.keyboard.type(process.env.OPENVOD_PASSWORD);
    await page.keyboard.press('Enter');
    await page.locator('#who').filter({ hasText: process.env.OPENVOD_USERNAME }).waitFor();

    // Tab from the top reaches every section of the console (links in the bar).
    const reached = new Set();
    await page.locator('.brand').focus();
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => document.activeElement?.getAttribute('href') || document.activeElement?.textContent?.trim()));
    }
    report[`${label}_tab_reaches`] = ['#/videos', '#/recordings', '#/settings', 'Log out'].filter((x) => reached.has(x));
    // And Enter on a focused link goes there.
    await page.locator('a[href="#/recordings"]').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();

    for (const p of pages) {
      // A fresh load of each page, so its shifts are counted from the first paint.
      await page.goto('about:blank');
      await page.goto(`${base}/console/${p.hash}`);
      await page.locator(p.ready).first().waitFor({ timeout: 30000 });
      await page.waitForTimeout(500);
      await page.addScriptTag({ path: axePath });
      const axe = await page.evaluate(async () => {
        const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
      });
      const layout = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        cls: window.__cls,
      }));
      report.audits[`${label}/${p.name}`] = { violations: axe, ...layout };
      await page.screenshot({ path: join(shots, `a11y-${label}-${p.name}.png`), fullPage: true });
    }

    // The time zone: the settings page lists the tokens' creation times in local time.
    if (label === 'desktop') {
      await page.goto(`${base}/console/#/settings`);
      await page.locator('#tokens li').first().waitFor();
      const text = await page.locator(`#tokens li[data-token-id="${process.env.OPENVOD_TOKEN_ID}"]`).textContent();
      const auth = Buffer.from(`${process.env.OPENVOD_TOKEN_ID}:${process.env.OPENVOD_TOKEN_SECRET}`).toString('base64');
      const listed = await (await fetch(`${base}/openvod/v1/tokens`, { headers: { authorization: `Basic ${auth}` } })).json();
      const created = listed.data.find((t) => t.id === process.env.OPENVOD_TOKEN_ID).created_at;
      const seconds = Number(created);
      const date = Number.isFinite(seconds) ? new Date(seconds * 1000) : new Date(created);
      const expected = date.toLocaleString('en-GB', { timeZone: 'Pacific/Auckland' });
      report.token_time_is_local = text.includes(expected);
      report.token_time = { text, expected };
    }
    report[`${label}_problems`] = problems;
    await context.close();
  }
  report.steps.push('audited');
} catch (e) {
  report.failure = String((e && e.stack) || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
