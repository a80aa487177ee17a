// hls.js in Chromium plays a master playlist with subtitle tracks: it lists them by name and
// language, loads the one picked, and the cue due at the playhead is the one the test's subtitle
// file has there. Prints one JSON report; crates/openvod/tests/it/text_tracks.rs asserts on it.
//
// Environment: OPENVOD_MASTER (the master playlist URL), OPENVOD_CUE_AT (seconds into the video
// where a cue shows), CHROMIUM (default /usr/bin/chromium).
import { fileURLToPath } from 'node:url';
import { launch, serveApp } from './lib.mjs';

const modules = fileURLToPath(new URL('./node_modules/', import.meta.url));
const master = process.env.OPENVOD_MASTER;
const cueAt = Number(process.env.OPENVOD_CUE_AT);

const page_html = `<!doctype html><meta charset="utf-8"><title>player</title>
<script src="/hls.js"></script><video id="video" muted playsinline></video>`;
const scripts = { '/hls.js': modules + 'hls.js/dist/hls.min.js' };
const { server: app, origin } = await serveApp(page_html, scripts);

const browser = await launch();
const report = {};
try {
  const page = await browser.newPage();
  const lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
  report.console = lines;
  await page.goto(origin + '/');
  report.play = await page.evaluate(
    async ({ master, cueAt }) => {
      const video = document.getElementById('video');
      const hls = new Hls({ subtitleDisplay: true });
      const out = {};
      const fatal = new Promise((resolve) =>
        hls.on(Hls.Events.ERROR, (_, d) => d.fatal && resolve(`${d.type}: ${d.details}`)),
      );
      const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
      hls.loadSource(master);
      hls.attachMedia(video);
      const first = await Promise.race([parsed.then(() => null), fatal]);
      if (first) return { fatal: first };
      out.tracks = hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang }));
      hls.subtitleTrack = 0;
      await video.play();
      video.currentTime = cueAt;
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline) {
        const showing = [...video.textTracks].find((t) => t.mode === 'showing');
        const active = showing && showing.activeCues ? [...showing.activeCues] : [];
        if (active.length > 0) {
          out.active = active.map((c) => c.text);
          out.at = video.currentTime;
          out.label = showing.label;
          out.language = showing.language;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!out.active) out.timed_out = { time: video.currentTime, text_tracks: video.textTracks.length };
      hls.destroy();
      return out;
    },
    { master, cueAt },
  );
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  app.close();
}
console.log(JSON.stringify(report));
