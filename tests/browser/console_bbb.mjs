// The console's BBB pages in Chromium: staff claims a migrated recording from the claim queue and
// sees the migration's list; an admin makes an invite link for the owner (an account without a
// password), who chooses a password with it, imports their external recording and watches it
// become "imported".
// Environment: OPENVOD_BASE, OPENVOD_STAFF, OPENVOD_ADMIN (password OPENVOD_PASSWORD for both),
// OPENVOD_OWNER (no password yet), OPENVOD_SCREENSHOTS, CHROMIUM. Prints one JSON report.
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
  await page.locator('#migration tr[data-record-id]').first().waitFor();
  report.migration = await page.locator('#migration tr[data-record-id] .migration-state').allTextContents();
  await page.locator('#claims li').first().waitFor();
  report.claims = await page.locator('#claims li strong').allTextContents();
  await page.screenshot({ path: join(shots, '8-claims.png'), fullPage: true });
  await page.getByRole('button', { name: 'Claim for me' }).first().click();
  await page.locator('#claims .empty').waitFor();
  report.claims_after = await page.locator('#claims .empty').textContent();
  report.steps.push('claimed');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username').waitFor();

  await login(process.env.OPENVOD_ADMIN);
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.locator(`li[data-username="${process.env.OPENVOD_OWNER}"]`).getByRole('button', { name: 'Invite link' }).click();
  const invite = await page.locator('#invite-link').inputValue();
  report.invite_is_a_console_link = invite.startsWith(`${base}/console/#/invite/`);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username').waitFor();

  await page.goto('about:blank');
  await page.goto(invite);
  report.invite_heading = await page.getByRole('heading', { level: 1 }).textContent();
  await page.getByLabel('Password', { exact: true }).fill('chosen with the invite');
  await page.getByLabel('Password again').fill('chosen with the invite');
  await page.screenshot({ path: join(shots, '10-invite.png'), fullPage: true });
  await page.getByRole('button', { name: 'Set password and log in' }).click();
  await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
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
