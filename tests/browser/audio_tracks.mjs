// hls.js in Chromium plays a master playlist with an added audio track: it lists the variants' own
// sound and the alternate by name and language, switches to the alternate, loads its segments and
// keeps playing. Prints one JSON report; crates/openvod/tests/it/audio_tracks.rs asserts on it.
//
// Environment: OPENVOD_MASTER (the master playlist URL), CHROMIUM (default /usr/bin/chromium).
import { fileURLToPath } from 'node:url';
import { launch, serveApp } from './lib.mjs';

const modules = fileURLToPath(new URL('./node_modules/', import.meta.url));
const master = process.env.OPENVOD_MASTER;

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
  report.play = await page.evaluate(async (master) => {
    const video = document.getElementById('video');
    const hls = new Hls();
    const out = { alternate_fragments: 0 };
    const fatal = new Promise((resolve) =>
      hls.on(Hls.Events.ERROR, (_, d) => d.fatal && resolve(`${d.type}: ${d.details}`)),
    );
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
      if (d.frag.type === 'audio' && d.frag.url.includes('/audio/')) out.alternate_fragments += 1;
    });
    const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
    hls.loadSource(master);
    hls.attachMedia(video);
    const first = await Promise.race([parsed.then(() => null), fatal]);
    if (first) return { fatal: first };
    out.tracks = hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang || '' }));
    await video.play();
    const switched = new Promise((resolve) =>
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => resolve(d.id)),
    );
    hls.audioTrack = 1;
    const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 20000));
    const id = await Promise.race([switched, fatal.then((f) => ({ fatal: f })), timeout]);
    if (id === 'timeout') return { ...out, timed_out: 'no AUDIO_TRACK_SWITCHED' };
    if (id && id.fatal) return { ...out, fatal: id.fatal };
    out.switched_to = id;
    const from = video.currentTime;
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && !(video.currentTime - from >= 1.5 && out.alternate_fragments > 0)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    out.played_after_switch = video.currentTime - from;
    if (out.played_after_switch < 1 || out.alternate_fragments === 0) {
      out.timed_out = { time: video.currentTime, ready_state: video.readyState };
    }
    hls.destroy();
    return out;
  }, master);
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  app.close();
}
console.log(JSON.stringify(report));
