// The unmodified @mux/mux-node SDK against openvod, only the base URL changed: uploads, assets,
// text tracks, static renditions, clips, input info, playback ids and playback restrictions. Every
// answer must deserialize and carry what was asked. Prints one JSON report on stdout; the Rust test
// (crates/openvod/tests/it/python_clients.rs) asserts on it.
//
// Environment: OPENVOD_BASE, OPENVOD_TOKEN_ID, OPENVOD_TOKEN_SECRET, OPENVOD_CLIP (a video file).
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import Mux from '@mux/mux-node';

const base = process.env.OPENVOD_BASE;
const mux = new Mux({
  baseURL: base,
  tokenId: process.env.OPENVOD_TOKEN_ID,
  tokenSecret: process.env.OPENVOD_TOKEN_SECRET,
});
const report = { checks: [] };
function check(condition, what) {
  report.checks.push(what);
  if (!condition) throw new Error(`FAILED: ${what}`);
}
async function until(what, get, ok, secs = 60) {
  const deadline = Date.now() + secs * 1000;
  for (;;) {
    const value = await get();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A subtitle file for the track, served from here.
const subs = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/vtt' });
  res.end('WEBVTT\n\n00:00.100 --> 00:01.000\nHello from mux-node\n');
});
await new Promise((resolve) => subs.listen(0, '127.0.0.1', resolve));
const subsUrl = `http://127.0.0.1:${subs.address().port}/en.vtt`;

try {
  const upload = await mux.video.uploads.create({
    cors_origin: '*',
    new_asset_settings: { playback_policies: ['public'], passthrough: 'node-1' },
  });
  check(upload.status === 'waiting' && upload.url.startsWith(base), 'uploads.create');
  const put = await fetch(upload.url, { method: 'PUT', body: await readFile(process.env.OPENVOD_CLIP) });
  check(put.ok, `PUT of the file: ${put.status}`);
  const uploaded = await mux.video.uploads.retrieve(upload.id);
  check(uploaded.status === 'asset_created' && uploaded.asset_id, 'uploads.retrieve');
  const assetId = uploaded.asset_id;
  const asset = await until('asset ready', () => mux.video.assets.retrieve(assetId), (a) => a.status === 'ready');
  check(asset.passthrough === 'node-1' && asset.playback_ids[0].policy === 'public', 'assets.retrieve');
  const pid = asset.playback_ids[0].id;

  const info = await mux.video.assets.retrieveInputInfo(assetId);
  check(info.length === 1 && info[0].file.tracks.some((t) => t.type === 'video'), 'assets.retrieveInputInfo');

  const track = await mux.video.assets.createTrack(assetId, {
    url: subsUrl, type: 'text', text_type: 'subtitles', language_code: 'en', name: 'English',
  });
  check(track.type === 'text' && track.status === 'preparing', 'assets.createTrack');
  const withTrack = await until('text track ready', () => mux.video.assets.retrieve(assetId),
    (a) => (a.tracks || []).some((t) => t.id === track.id && t.status === 'ready'));
  check(withTrack.tracks.find((t) => t.id === track.id).language_code === 'en', 'the track is listed');
  const vtt = await fetch(`${base}/${pid}/text/${track.id}.vtt`);
  check(vtt.ok && (await vtt.text()).includes('Hello from mux-node'), 'the track file plays');
  await mux.video.assets.deleteTrack(assetId, track.id);
  const afterDelete = await mux.video.assets.retrieve(assetId);
  check(!(afterDelete.tracks || []).some((t) => t.type === 'text'), 'assets.deleteTrack');

  const rendition = await mux.video.assets.createStaticRendition(assetId, { resolution: 'highest' });
  check(rendition.name === 'highest.mp4' && rendition.id, 'assets.createStaticRendition');
  await until('static rendition ready', () => mux.video.assets.retrieve(assetId),
    (a) => (a.static_renditions?.files || []).some((f) => f.name === 'highest.mp4' && f.status === 'ready'));
  const mp4 = await fetch(`${base}/${pid}/highest.mp4`);
  check(mp4.ok && (await mp4.arrayBuffer()).byteLength > 1000, 'the static rendition downloads');
  await mux.video.assets.deleteStaticRendition(assetId, rendition.id);
  check((await fetch(`${base}/${pid}/highest.mp4`)).status === 404, 'assets.deleteStaticRendition');

  const clip = await mux.video.assets.create({
    inputs: [{ url: `mux://assets/${assetId}`, start_time: 0.5, end_time: 1.5 }],
    playback_policies: ['public'],
  });
  check(clip.ingest_type === 'on_demand_clip', 'assets.create of a clip');
  const clipped = await until('clip ready', () => mux.video.assets.retrieve(clip.id), (a) => a.status !== 'preparing');
  check(clipped.status === 'ready' && Math.abs(clipped.duration - 1.0) < 0.1, `the clip is 1 s long: ${clipped.duration}`);

  const signed = await mux.video.assets.createPlaybackId(assetId, { policy: 'signed' });
  check(signed.policy === 'signed', 'assets.createPlaybackId');
  check((await mux.video.assets.retrievePlaybackId(assetId, signed.id)).id === signed.id, 'assets.retrievePlaybackId');
  await mux.video.assets.deletePlaybackId(assetId, signed.id);

  const restriction = await mux.video.playbackRestrictions.create({
    referrer: { allowed_domains: ['*.example.com'], allow_no_referrer: false },
    user_agent: { allow_no_user_agent: false, allow_high_risk_user_agent: false },
  });
  check(restriction.referrer.allowed_domains[0] === '*.example.com', 'playbackRestrictions.create');
  const referrer = await mux.video.playbackRestrictions.updateReferrer(restriction.id, {
    allowed_domains: ['example.org'], allow_no_referrer: true,
  });
  check(referrer.referrer.allowed_domains[0] === 'example.org', 'playbackRestrictions.updateReferrer');
  const agent = await mux.video.playbackRestrictions.updateUserAgent(restriction.id, {
    allow_no_user_agent: true, allow_high_risk_user_agent: true,
  });
  check(agent.user_agent.allow_high_risk_user_agent === true, 'playbackRestrictions.updateUserAgent');
  const listed = [];
  for await (const r of mux.video.playbackRestrictions.list()) listed.push(r.id);
  check(listed.includes(restriction.id), 'playbackRestrictions.list');
  await mux.video.playbackRestrictions.delete(restriction.id);
  let gone = false;
  try {
    await mux.video.playbackRestrictions.retrieve(restriction.id);
  } catch (e) {
    gone = e.status === 404;
  }
  check(gone, 'a deleted restriction is a 404');

  await mux.video.assets.delete(clip.id);
  await mux.video.assets.delete(assetId);
  let deleted = false;
  try {
    await mux.video.assets.retrieve(assetId);
  } catch (e) {
    deleted = e.status === 404 && e instanceof Mux.NotFoundError;
  }
  check(deleted, 'a deleted asset is a NotFoundError');
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  subs.close();
}
console.log(JSON.stringify(report));
