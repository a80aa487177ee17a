// The console's settings, as an admin in Chromium: add a webhook endpoint (its secret shown once),
// upload a video so events flow, see a delivered attempt listed, create and delete a signing key,
// and see the recordings page's empty states. Prints one JSON report for browser.rs.
//
// Environment: OPENVOD_BASE, OPENVOD_USERNAME, OPENVOD_PASSWORD, OPENVOD_CLIP, OPENVOD_RECEIVER
// (a webhook receiver URL), OPENVOD_SCREENSHOTS, CHROMIUM.
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
  page.on('dialog', (d) => d.accept());
  report.problems = problems;

  await page.goto(`${base}/console/`);
  await page.getByLabel('Username').fill(process.env.OPENVOD_USERNAME);
  await page.getByLabel('Password').fill(process.env.OPENVOD_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
  report.no_endpoints = await page.locator('#endpoints .empty').textContent();
  await page.getByLabel('Endpoint URL').fill(process.env.OPENVOD_RECEIVER);
  await page.getByLabel('Format').selectOption('standard');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  report.secret = await page.locator('#endpoint-secret').textContent();
  await page.locator('.endpoint').first().waitFor();
  report.steps.push('endpoint added');

  // Events flow from an upload.
  await page.getByRole('link', { name: 'Videos' }).click();
  await page.setInputFiles('#file-input', process.env.OPENVOD_CLIP);
  await page.locator('.row[data-status="ready"]').first().waitFor({ timeout: 120000 });
  report.steps.push('uploaded');
  // Admins can narrow the list to one owner.
  await page.getByLabel('Filter by owner').fill('nobody');
  await page.getByLabel('Filter by owner').press('Enter');
  await page.locator('#video-list .empty').waitFor();
  report.owner_filter_empty = await page.locator('.row').count();
  await page.getByLabel('Filter by owner').fill('ada');
  await page.getByLabel('Filter by owner').press('Enter');
  await page.locator('.row').first().waitFor();
  report.owner_filter_ada = await page.locator('.row').count();
  await page.getByLabel('Filter by owner').fill('');
  await page.getByLabel('Filter by owner').press('Enter');

  // Tencent VOD's flow from the console: ProcessMedia with two MP4 templates, then Quick View.
  await page.locator('.row').first().click();
  await page.getByLabel('Transcoding template ids').fill('100010, 100020');
  await page.getByRole('button', { name: 'Process' }).click();
  report.process_status = await page.locator('#quick-view [role=status]').textContent();
  for (let i = 0; i < 120; i++) {
    await page.getByRole('button', { name: 'Quick View' }).click();
    await page.locator('#quick-view table, #quick-view .empty, #quick-view .error').first().waitFor();
    if (await page.locator('#quick-view tr[data-definition="100020"]').count() > 0) break;
    await page.waitForTimeout(500);
  }
  report.quick_view = await page.locator('#quick-view tbody tr').evaluateAll((rows) => rows.map((r) => ({
    definition: r.dataset.definition, size: r.children[1].textContent, url: r.querySelector('a').href })));
  // The asset's events, each with its delivery attempts.
  const ready = page.locator('#asset-events li[data-event-type="video.asset.ready"]');
  for (let i = 0; i < 60; i++) {
    await ready.getByRole('button', { name: 'Attempts' }).click();
    if (await ready.locator('.attempt[data-success="true"]').count() > 0) break;
    await page.waitForTimeout(500);
  }
  report.asset_event_types = await page.locator('#asset-events > ul > li').evaluateAll((lis) => lis.map((li) => li.dataset.eventType));
  report.ready_attempts = await ready.locator('.attempt').allTextContents();
  // Resend: a second delivery of the same event.
  await ready.getByRole('button', { name: 'Resend' }).click();
  await ready.getByRole('button', { name: 'Resent' }).waitFor();
  for (let i = 0; i < 60; i++) {
    await ready.getByRole('button', { name: 'Attempts' }).click();
    if (await ready.locator('.attempt[data-success="true"]').count() > 1) break;
    await page.waitForTimeout(500);
  }
  report.ready_attempts_after_resend = await ready.locator('.attempt[data-success="true"]').count();
  report.quick_view_fetched = [];
  for (const row of report.quick_view) {
    const r = await fetch(row.url);
    report.quick_view_fetched.push({ definition: row.definition, status: r.status, bytes: (await r.arrayBuffer()).byteLength });
  }
  await page.screenshot({ path: join(shots, '7-quick-view.png'), fullPage: true });
  report.steps.push('quick view');

  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
  for (let i = 0; i < 60; i++) {
    await page.getByRole('button', { name: 'Attempts' }).click();
    if (await page.locator('.attempt[data-success="true"]').count() > 0) break;
    await page.waitForTimeout(500);
  }
  report.attempts = await page.locator('.attempt').allTextContents();
  report.steps.push('attempt listed');
  // Replay every event to the endpoint: each is delivered again.
  const delivered = await page.locator('.attempt[data-success="true"]').count();
  await page.getByText('Replay events').click();
  await page.getByRole('button', { name: 'Replay', exact: true }).click();
  await page.getByText(/event\(s\) queued for delivery again/).waitFor();
  report.replay_status = await page.getByText(/event\(s\) queued for delivery again/).textContent();
  report.replay_queued = parseInt(report.replay_status, 10);
  for (let i = 0; i < 60; i++) {
    await page.getByRole('button', { name: 'Attempts' }).click();
    if (await page.locator('.attempt[data-success="true"]').count() >= delivered + report.replay_queued) break;
    await page.waitForTimeout(500);
  }
  report.delivered_before_replay = delivered;
  report.delivered_after_replay = await page.locator('.attempt[data-success="true"]').count();
  await page.screenshot({ path: join(shots, '6-settings.png'), fullPage: true });
  report.steps.push('replayed');

  await page.getByRole('button', { name: 'Create signing key' }).click();
  await page.getByLabel('Private key').waitFor();
  report.private_key_shown = (await page.getByLabel('Private key').inputValue()).length > 100;
  await page.locator('[data-key-id]').first().waitFor();
  report.keys_before_delete = await page.locator('[data-key-id]').count();
  await page.locator('[data-key-id] button', { hasText: 'Delete' }).first().click();
  await page.locator('#signing-keys .empty').waitFor();
  report.steps.push('signing key created and deleted');

  // Tencent VOD's event settings: switch to pull with upload events, and it sticks across a reload.
  await page.getByLabel('Event mode').selectOption('PULL');
  await page.getByLabel('Upload events').check();
  await page.getByRole('button', { name: 'Save event settings' }).click();
  await page.getByText('Saved', { exact: true }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: 'Tencent VOD event notifications' }).waitFor();
  await page.waitForFunction(() => document.querySelector('#vod-mode').value === 'PULL', null, { timeout: 10000 }).catch(() => {});
  report.vod_mode = await page.getByLabel('Event mode').inputValue();
  report.vod_upload_events = await page.getByLabel('Upload events').isChecked();

  // People: add one (a one-time password is shown), who can then log in; reset it; end sessions.
  await page.getByLabel('New username').fill('carl');
  await page.getByLabel('Role').selectOption('staff');
  await page.getByRole('button', { name: 'Add person' }).click();
  const first = await page.locator('.one-time-password').textContent();
  const loginAs = async (password) => (await fetch(`${base}/console/api/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'carl', password }) })).status;
  report.new_person_login = await loginAs(first);
  await page.locator('[data-username="carl"] button', { hasText: 'Reset password' }).click();
  await page.locator('.one-time-password', { hasNotText: first }).waitFor();
  const second = await page.locator('.one-time-password').textContent();
  report.old_password_after_reset = await loginAs(first);
  report.new_password_after_reset = await loginAs(second);
  await page.locator('[data-username="carl"] button', { hasText: 'End sessions' }).click();
  report.ended = await page.locator('#people').locator('..').getByText(/session\(s\) of carl ended/).textContent();

  // An API token: made here, shown once, works with HTTP Basic, then revoked.
  await page.getByLabel('Token name').fill('console-made');
  await page.getByRole('button', { name: 'Create token' }).click();
  const id = await page.locator('#token-id').textContent();
  const secret = await page.locator('#token-secret').textContent();
  const basic = 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
  report.token_works = (await fetch(`${base}/video/v1/assets`, { headers: { authorization: basic } })).status;
  await page.locator(`[data-token-id="${id}"] button`, { hasText: 'Revoke' }).click();
  await page.locator(`[data-token-id="${id}"][data-revoked="true"]`).waitFor();
  report.token_after_revoke = (await fetch(`${base}/video/v1/assets`, { headers: { authorization: basic } })).status;
  report.steps.push('token created and revoked');

  // Delete asks first; after yes, the video is gone.
  page.removeAllListeners('dialog');
  page.once('dialog', (d) => { report.delete_question = d.message(); d.accept(); });
  await page.getByRole('link', { name: 'Videos' }).click();
  await page.locator('.row').first().click();
  await page.getByRole('button', { name: 'Delete video' }).click();
  await page.locator('#video-list .empty').waitFor();
  report.after_delete = await page.locator('#video-list .empty').textContent();
  page.on('dialog', (d) => d.accept());

  await page.getByRole('link', { name: 'Recordings' }).click();
  await page.getByRole('heading', { name: 'My external recordings' }).waitFor();
  report.recordings_empty = await page.locator('#external .empty').textContent();
  report.claims_empty = await page.locator('#claims .empty').textContent();
  report.steps.push('recordings');
} catch (e) {
  report.failure = String((e && e.stack) || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
