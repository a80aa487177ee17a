// Tencent's browser upload SDK, vod-js-sdk-v6 (its published bundle, unchanged), uploading from an
// app's page in Chromium. A small app server (this script) serves the page and makes the upload
// signature with an openvod token, as the SDK's documentation tells apps to. The SDK calls
// https://vod2.qcloud.com and <bucket>.cos.<region>.myqcloud.com; those requests are routed
// to openvod, the stand-in for DNS pointing Tencent's names at it.
//
// Environment: OPENVOD_BASE, OPENVOD_TOKEN_ID, OPENVOD_TOKEN_SECRET, OPENVOD_CLIP, CHROMIUM.
// Prints one JSON report for the Rust test.
import { createHmac, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { launch, watchProblems } from './lib.mjs';

const require = createRequire(import.meta.url);
const sdk = readFileSync(require.resolve('vod-js-sdk-v6/dist/vod-js-sdk-v6.js'));
const base = process.env.OPENVOD_BASE;
const clip = readFileSync(process.env.OPENVOD_CLIP);

// The app server's signature, as Tencent documents it for vod-js-sdk-v6.
function signature() {
  const now = Math.floor(Date.now() / 1000);
  const original = new URLSearchParams({
    secretId: process.env.OPENVOD_TOKEN_ID,
    currentTimeStamp: String(now),
    expireTime: String(now + 600),
    random: String(randomInt(1e9)),
    sourceContext: 'from-the-browser',
  }).toString();
  const mac = createHmac('sha1', process.env.OPENVOD_TOKEN_SECRET).update(original).digest();
  return Buffer.concat([mac, Buffer.from(original)]).toString('base64');
}

const page = `<!doctype html><meta charset="utf-8"><title>app</title>
<script src="/vod-js-sdk-v6.js"></script>
<script>
window.upload = async () => {
  const bytes = await (await fetch('/clip.mp4')).arrayBuffer();
  const file = new File([bytes], 'lecture.mp4', { type: 'video/mp4' });
  const tcVod = new TcVod.default({ getSignature: () => fetch('/signature').then((r) => r.text()) });
  const uploader = tcVod.upload({ mediaFile: file });
  let progress = 0;
  uploader.on('media_progress', (info) => { progress = info.percent; });
  const done = await uploader.done();
  return { fileId: done.fileId, url: done.video.url, progress };
};
</script>`;

const app = createServer((req, res) => {
  if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  else if (req.url === '/vod-js-sdk-v6.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
  else if (req.url === '/clip.mp4') res.writeHead(200, { 'content-type': 'video/mp4' }).end(clip);
  else if (req.url === '/signature') res.writeHead(200, { 'content-type': 'text/plain' }).end(signature());
  else res.writeHead(404).end();
});
await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${app.address().port}`;

const browser = await launch();
const report = { routed: [] };
try {
  const context = await browser.newContext();
  const forward = async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    report.routed.push(`${request.method()} ${url.host}${url.pathname}${url.search}`);
    const headers = { ...request.headers() };
    delete headers.host;
    const answer = await fetch(`${base}${url.pathname}${url.search}`, {
      method: request.method(),
      headers,
      body: ['GET', 'HEAD'].includes(request.method()) ? undefined : request.postDataBuffer(),
    });
    await route.fulfill({
      status: answer.status,
      headers: Object.fromEntries(answer.headers),
      body: Buffer.from(await answer.arrayBuffer()),
    });
  };
  await context.route('https://vod2.qcloud.com/**', forward);
  // (The COS SDK uses the page's scheme, and falls back to the tencentcos.cn names.)
  await context.route(/^https?:\/\/[^/]+\.(myqcloud\.com|tencentcos\.cn)\//, forward);
  // The SDK's usage reports go to Tencent; nothing answers them here.
  await context.route(/^https:\/\/(?!vod2\.qcloud\.com)[^/]*\.(qcloud|tencent-cloud|tencentcs)\.com\//, (route) => route.fulfill({ status: 204 }));
  const tab = await context.newPage();
  report.problems = watchProblems(tab);
  report.failed = [];
  tab.on('requestfailed', (r) => report.failed.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  await tab.goto(origin);
  report.result = await tab.evaluate(() => window.upload());
} catch (e) {
  report.failure = String((e && e.stack) || e);
} finally {
  await browser.close();
  app.close();
}
console.log(JSON.stringify(report));
