// The web console, used as a person would in Chromium: log in, upload two files at once (one of
// them through a dropped connection), watch both turn "Normal" without a reload, open one and play
// it, rename it, look at the list on a 375 px wide phone, resume an upload after a reload, fail
// to open someone else's video, log out. Screenshots go to
// OPENVOD_SCREENSHOTS. Prints one JSON report; crates/openvod/tests/it/browser.rs asserts on it.
//
// Environment: OPENVOD_BASE, OPENVOD_USERNAME, OPENVOD_PASSWORD, OPENVOD_CLIPS (two paths joined
// by '|'), OPENVOD_SCREENSHOTS (a folder), CHROMIUM (default /usr/bin/chromium).
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { launch, watchProblems } from './lib.mjs';

const base = process.env.OPENVOD_BASE;
const shots = process.env.OPENVOD_SCREENSHOTS;
const clips = process.env.OPENVOD_CLIPS.split('|');
mkdirSync(shots, { recursive: true });

const browser = await launch();
const report = { steps: [] };
const step = (name, extra = {}) => report.steps.push({ name, ...extra });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  // Expected: the 401s of "not logged in yet" and of the wrong password, the dropped chunk, and the
  // 404 of someone else's video.
  const problems = watchProblems(page, /status of 40[14]|ERR_CONNECTION_RESET/);
  report.page = page;
  report.problems = problems;

  // A connection reset in the middle of a file: its second chunk fails once, and the upload goes on
  // from the offset the server committed.
  let dropped = 0;
  let slow = false;
  await page.route('**/upload/**', async (route) => {
    const request = route.request();
    const offset = request.headers()['upload-offset'];
    if (dropped === 0 && request.method() === 'PATCH' && offset && offset !== '0') {
      dropped++;
      await route.abort('connectionreset');
      return;
    }
    // While `slow`, chunks take a while: long enough to reload the page in the middle of a file.
    if (slow && request.method() === 'PATCH') await new Promise((r) => setTimeout(r, 400));
    await route.continue();
  });

  await page.goto(`${base}/console/`);
  await page.getByLabel('Username').waitFor();
  await page.screenshot({ path: join(shots, '1-login.png') });
  await page.getByLabel('Username').fill(process.env.OPENVOD_USERNAME);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  report.bad_login_message = await page.getByRole('alert').textContent();
  await page.getByLabel('Password').fill(process.env.OPENVOD_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Videos' }).waitFor();
  report.empty_state = await page.locator('.empty').textContent();
  report.who = await page.locator('#who').textContent();
  step('logged in');

  await page.setInputFiles('#file-input', clips);
  await page.locator('#uploads li[data-state="done"]').nth(1).waitFor({ timeout: 120000 });
  report.dropped_chunks = dropped;
  report.upload_states = await page.locator('#uploads li').evaluateAll((lis) => lis.map((li) => ({ name: li.dataset.file, state: li.dataset.state })));
  step('uploaded');
  await page.screenshot({ path: join(shots, '2-uploading.png') });

  // Both rows turn ready without a reload (the list refreshes itself).
  await page.locator('.row[data-status="ready"]').nth(1).waitFor({ timeout: 180000 });
  report.rows = await page.locator('.row').evaluateAll((rows) => rows.map((r) => ({
    id: r.dataset.assetId, status: r.dataset.status, title: r.querySelector('.title').textContent, label: r.querySelector('.status').textContent,
  })));
  await page.locator('.row img').first().waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.row img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.screenshot({ path: join(shots, '3-videos.png') });
  step('ready');

  // Search and the status filter narrow the list (on the server).
  const rowsBefore = await page.locator('.row').count();
  await page.getByLabel('Search by title').fill(basename(clips[0]));
  await page.waitForFunction((n) => document.querySelectorAll('.row').length < n, rowsBefore, { timeout: 10000 }).catch(() => {});
  report.search_hits = await page.locator('.row').count();
  await page.getByLabel('Search by title').fill('');
  await page.waitForFunction((n) => document.querySelectorAll('.row').length === n, rowsBefore, { timeout: 10000 });
  await page.getByLabel('Filter by status').selectOption('errored');
  await page.locator('#video-list .empty').waitFor();
  report.errored_filter = await page.locator('#video-list .empty').textContent();
  await page.getByLabel('Filter by status').selectOption('');
  await page.waitForFunction((n) => document.querySelectorAll('.row').length === n, rowsBefore, { timeout: 10000 });

  // Open the first and play it.
  await page.locator('.row').first().click();
  await page.locator('#player').waitFor();
  await page.waitForFunction(() => document.querySelector('#rendition').options.length > 1, null, { timeout: 30000 });
  await page.evaluate(() => document.querySelector('#player').play());
  await page.waitForFunction(() => document.querySelector('#player').currentTime > 1, null, { timeout: 30000 });
  report.played_to = await page.evaluate(() => document.querySelector('#player').currentTime);
  await page.waitForFunction(() => ['#thumbnail', '#storyboard'].every((s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }), null, { timeout: 30000 });
  report.previews = await page.evaluate(() => ['#thumbnail', '#storyboard'].map((s) => document.querySelector(s).naturalWidth));
  report.renditions = await page.locator('#rendition option').allTextContents();
  await page.screenshot({ path: join(shots, '4-video.png'), fullPage: true });
  step('played');

  // Rename it; the list shows the new title.
  await page.getByLabel('Title').fill('Renamed in the console');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved').waitFor();
  await page.getByRole('link', { name: '← Videos' }).click();
  await page.getByText('Renamed in the console').waitFor();
  step('renamed');

  // A phone-sized screen.
  await page.setViewportSize({ width: 375, height: 740 });
  await page.screenshot({ path: join(shots, '5-videos-375px.png'), fullPage: true });
  report.horizontal_overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

  // A reload in the middle of an upload: picking the same file again resumes it.
  await page.setViewportSize({ width: 1280, height: 800 });
  slow = true;
  await page.setInputFiles('#file-input', clips[0]);
  await page.waitForFunction(() => { const p = document.querySelector('#uploads progress'); return p && p.value > 10; });
  report.before_reload = await page.evaluate(() => document.querySelector('#uploads progress').value);
  await page.reload();
  await page.getByRole('heading', { name: 'Videos' }).waitFor();
  slow = false;
  await page.setInputFiles('#file-input', clips[0]);
  await page.locator('#uploads li[data-state="done"]').waitFor({ timeout: 60000 });
  report.resumed = await page.locator('#uploads li').first().getAttribute('data-resumed');
  await page.locator('.row').nth(2).waitFor();
  report.rows_after_resume = await page.locator('.row').count();
  step('resumed after reload');

  // Someone else's video does not exist for this user, even by its URL.
  await page.goto(`${base}/console/#/videos/${process.env.OPENVOD_OTHERS_ASSET}`);
  report.others_video = await page.getByRole('alert').textContent();

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username').waitFor();
  step('logged out');
} catch (e) {
  report.failure = String((e && e.stack) || e);
  report.uploads_text = await report.page?.locator('#uploads').textContent().catch(() => null);
} finally {
  delete report.page;
  await browser.close();
}
console.log(JSON.stringify(report));
