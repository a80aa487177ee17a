// What a new user of openvod does in a browser, for real: an app page on its own origin uploads a
// file with @mux/upchunk to a direct-upload URL, waits for `ready`, then plays the video with
// hls.js from the first second and seeks to 80 %. Prints one JSON report on stdout; the Rust test
// (crates/openvod/tests/it/browser.rs) asserts on it.
//
// Environment: OPENVOD_BASE (http://127.0.0.1:PORT), OPENVOD_TOKEN_ID, OPENVOD_TOKEN_SECRET,
// OPENVOD_CLIP (a video file), CHROMIUM (default /usr/bin/chromium).
import { fileURLToPath } from 'node:url';
import { launch, serveApp } from './lib.mjs';

const modules = fileURLToPath(new URL('./node_modules/', import.meta.url));
const base = process.env.OPENVOD_BASE;
const auth = 'Basic ' + Buffer.from(`${process.env.OPENVOD_TOKEN_ID}:${process.env.OPENVOD_TOKEN_SECRET}`).toString('base64');
const clip = process.env.OPENVOD_CLIP;

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json.data;
}

// The app's own origin: another port on loopback, so every call to openvod is cross-origin (CORS).
const scripts = {
  '/upchunk.js': modules + '@mux/upchunk/dist/upchunk.js',
  '/hls.js': modules + 'hls.js/dist/hls.min.js',
};
const page_html = `<!doctype html><meta charset="utf-8"><title>app</title>
<script src="/upchunk.js"></script><script src="/hls.js"></script>
<input type="file" id="file"><video id="video" muted playsinline></video>`;
const { server: app, origin } = await serveApp(page_html, scripts);

const browser = await launch();
const report = { origin };
try {
  const page = await browser.newPage();
  const console_lines = [];
  page.on('console', (m) => console_lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_lines.push(`pageerror: ${e.message}`));
  report.console = console_lines;
  await page.goto(origin + '/');

  // 1. Upload with UpChunk, in 256 KiB chunks, to a URL made for this origin.
  const upload = await api('POST', '/video/v1/uploads', {
    cors_origin: origin,
    new_asset_settings: { playback_policy: ['public'] },
  });
  await page.setInputFiles('#file', clip);
  report.upload = await page.evaluate(
    (endpoint) =>
      new Promise((resolve) => {
        const file = document.getElementById('file').files[0];
        const progress = [];
        const u = UpChunk.createUpload({ endpoint, file, chunkSize: 256 });
        u.on('progress', (e) => progress.push(Math.round(e.detail)));
        u.on('error', (e) => resolve({ ok: false, error: e.detail.message, progress }));
        u.on('success', () => resolve({ ok: true, size: file.size, progress }));
      }),
    upload.url,
  );
  if (!report.upload.ok) throw new Error('upload failed: ' + report.upload.error);

  // 2. Wait for ready, as the app would (polling the API).
  let asset_id;
  for (let i = 0; i < 600 && !asset_id; i++) {
    asset_id = (await api('GET', `/video/v1/uploads/${upload.id}`)).asset_id;
    if (!asset_id) await new Promise((r) => setTimeout(r, 100));
  }
  let asset;
  for (let i = 0; i < 1200; i++) {
    asset = await api('GET', `/video/v1/assets/${asset_id}`);
    if (asset.status !== 'preparing') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  report.asset = { id: asset.id, status: asset.status, duration: asset.duration };
  if (asset.status !== 'ready') throw new Error('asset is ' + asset.status);
  const src = `${base}/${asset.playback_ids[0].id}.m3u8`;

  // 3. Play with hls.js at once, then seek to 80 %.
  report.play = await page.evaluate(
    (src) =>
      new Promise((resolve) => {
        const video = document.getElementById('video');
        const out = { levels: [], errors: [], seeks: [] };
        const done = (extra) => resolve(Object.assign(out, extra));
        const timer = setTimeout(() => done({ timed_out: true, current_time: video.currentTime }), 60000);
        if (!Hls.isSupported()) return done({ hls_supported: false });
        const hls = new Hls({ maxBufferLength: 8 });
        hls.on(Hls.Events.ERROR, (_, d) => {
          out.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''}`);
          if (d.fatal) {
            clearTimeout(timer);
            done({ fatal: true });
          }
        });
        hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
          out.levels = d.levels.map((l) => ({ height: l.height, bitrate: l.bitrate, codecs: l.codecSet || `${l.videoCodec},${l.audioCodec}` }));
        });
        hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
          out.live = out.live || d.details.live; // false once EXT-X-ENDLIST is seen
          out.playlist_type = d.details.type;
          out.total_duration = d.details.totalduration;
        });
        hls.loadSource(src);
        hls.attachMedia(video);
        video.addEventListener('loadedmetadata', () => {
          out.media_duration = video.duration;
          video.play().catch((e) => out.errors.push('play(): ' + e.message));
        });
        const started = () => {
          if (video.currentTime < 0.5) return;
          video.removeEventListener('timeupdate', started);
          out.played_from_start = video.currentTime;
          const target = video.duration * 0.8;
          out.seek_target = target;
          video.currentTime = target;
          const after_seek = () => {
            if (video.currentTime < target + 0.5) return;
            video.removeEventListener('timeupdate', after_seek);
            clearTimeout(timer);
            done({ played_after_seek: video.currentTime, level_playing: hls.levels[hls.currentLevel]?.height });
          };
          video.addEventListener('timeupdate', after_seek);
        };
        video.addEventListener('timeupdate', started);
      }),
    src,
  );
} catch (e) {
  report.failure = String(e && e.stack || e);
} finally {
  await browser.close();
  app.close();
}
console.log(JSON.stringify(report));
