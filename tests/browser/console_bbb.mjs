// The console's BBB pages in Chromium: staff claims a migrated recording from the claim queue,
// then its owner imports their external recording and watches it become "imported".
// Environment: OPENVOD_BASE, OPENVOD_STAFF, OPENVOD_OWNER (usernames; password OPENVOD_PASSWORD for
// both), OPENVOD_SCREENSHOTS, CHROMIUM. Prints one JSON report for the Rust test.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, watchProblems } from './lib.mjs';

const base = process.env.OPENVOD_BASE;
const shots = process.env.OPENVOD_SCREENSHOTS;
mkdirSync(shots, { recursive: true });
const browser = await launch();
const report = { steps: [] };
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const problems = watchProblems(page, /status of 401/);
  report.problems = problems;
  const login = async (username) => {
    // A fresh load (a hash change alone would re-render the form under Playwright's typing).
    await page.goto('about:blank');
    await page.goto(`${base}/console/#/recordings`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(process.env.OPENVOD_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
  };

  await login(process.env.OPENVOD_STAFF);
  await page.locator('#claims li').first().waitFor();
  report.claims = await page.locator('#claims li strong').allTextContents();
  await page.screenshot({ path: join(shots, '8-claims.png'), fullPage: true });
  await page.getByRole('button', { name: 'Claim for me' }).first().click();
  await page.locator('#claims .empty').waitFor();
  report.claims_after = await page.locator('#claims .empty').textContent();
  report.steps.push('claimed');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username').waitFor();

  await login(process.env.OPENVOD_OWNER);
  report.owner_sees_claims = await page.locator('#claims').count();
  await page.locator('#external li').first().waitFor();
  report.external_before = await page.locator('#external li .state').allTextContents();
  await page.getByRole('button', { name: 'Import' }).first().click();
  await page.locator('#external li .state', { hasText: /^imported$/ }).waitFor({ timeout: 120000 });
  report.external_after = await page.locator('#external li .state').allTextContents();
  await page.screenshot({ path: join(shots, '9-my-recordings.png'), fullPage: true });
  report.steps.push('imported');
} catch (e) {
  report.failure = String((e && e.stack) || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
