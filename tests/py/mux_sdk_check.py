"""Drives openvod with the unmodified mux-python SDK; only the host differs from Mux.

mux-python returns None (not an error) when a status code differs from Mux's, so every
call below must give a populated model.
"""
import http.server
import os
import sys
import threading
import time

import mux_python
import requests
from mux_python.rest import NotFoundException, ApiException

base = os.environ["OPENVOD_URL"]
cfg = mux_python.Configuration(host=base + "/")  # a trailing slash, as users often configure it
cfg.username = os.environ["OPENVOD_TOKEN_ID"]
cfg.password = os.environ["OPENVOD_TOKEN_SECRET"]
client = mux_python.ApiClient(cfg)
uploads = mux_python.DirectUploadsApi(client)
assets = mux_python.AssetsApi(client)
clip = open(os.environ["OPENVOD_CLIP"], "rb").read()


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)


meta = mux_python.AssetMetadata(title="SDK clip", creator_id="sdk-creator", external_id="sdk-ext-1")
settings = mux_python.CreateAssetRequest(
    playback_policy=[mux_python.PlaybackPolicy.PUBLIC], passthrough="sdk-1",
    mp4_support="standard", meta=meta)
created = uploads.create_direct_upload(
    mux_python.CreateUploadRequest(cors_origin="*", new_asset_settings=settings, timeout=3600))
check(created is not None and created.data is not None, "create_direct_upload returned a model")
upload = created.data
check(upload.status == "waiting" and upload.url.startswith(base), f"upload waiting with our URL: {upload}")
check(upload.new_asset_settings.passthrough == "sdk-1", "new_asset_settings echoed")
check(upload.new_asset_settings.meta == meta, f"new_asset_settings.meta echoed: {upload.new_asset_settings.meta}")

r = requests.put(upload.url, data=clip, headers={"Content-Type": "video/mp4"})
check(r.status_code == 200, f"PUT of the file answered {r.status_code} {r.text}")

got = uploads.get_direct_upload(upload.id)
check(got is not None and got.data.status == "asset_created" and got.data.asset_id, f"get_direct_upload: {got}")
asset_id = got.data.asset_id

listed = uploads.list_direct_uploads(limit=10, page=1)
check(listed is not None and any(u.id == upload.id for u in listed.data), "list_direct_uploads has it")

second = uploads.create_direct_upload(mux_python.CreateUploadRequest(cors_origin="*")).data
cancelled = uploads.cancel_direct_upload(second.id)
check(cancelled is not None and cancelled.data.status == "cancelled", f"cancel_direct_upload: {cancelled}")

# The in-process worker probes and transcodes; get_asset must deserialize at every stage, and the
# ready asset's enum values must be within the SDK's lists (it raises ValueError otherwise).
deadline = time.time() + 60
asset = assets.get_asset(asset_id)
def done(a):
    return a.status == "ready" and a.static_renditions is not None and a.static_renditions.status == "ready"


while not done(asset.data) and time.time() < deadline:
    check(asset.data.status != "errored", f"asset errored: {asset.data.errors}")
    time.sleep(0.2)
    asset = assets.get_asset(asset_id)
a = asset.data
check(a.id == asset_id and a.status == "ready" and a.upload_id == upload.id, f"get_asset: {a}")
check(a.resolution_tier == "720p" and a.max_stored_resolution == "SD", f"tiers {a.resolution_tier} {a.max_stored_resolution}")
check(a.aspect_ratio == "4:3" and a.max_stored_frame_rate == 15, f"aspect {a.aspect_ratio} fps {a.max_stored_frame_rate}")
check(a.passthrough == "sdk-1" and a.mp4_support == "standard", "asset settings")
check(a.meta == meta, f"asset meta from new_asset_settings: {a.meta}")
updated = assets.update_asset(asset_id, mux_python.UpdateAssetRequest(
    meta=mux_python.AssetMetadata(creator_id="sdk-creator-2")))
check(updated is not None and updated.data.meta == mux_python.AssetMetadata(
    title="SDK clip", creator_id="sdk-creator-2", external_id="sdk-ext-1"),
    f"update_asset replaced only creator_id: {updated and updated.data.meta}")
check(assets.get_asset(asset_id).data.meta.creator_id == "sdk-creator-2", "updated meta is stored")
sr = a.static_renditions
check(sr is not None and sr.status == "ready" and [f.name for f in sr.files] == ["high.mp4"], f"static renditions {sr}")
mp4 = requests.get(f"{base}/{a.playback_ids[0].id}/high.mp4")
check(mp4.status_code == 200 and int(sr.files[0].filesize) == len(mp4.content), "high.mp4 downloads")
check(abs(a.duration - 2.0) < 0.1, f"duration {a.duration}")
check(a.playback_ids[0].policy == "public", "playback id")
check({t.type for t in a.tracks} == {"video", "audio"}, f"tracks {a.tracks}")
info = assets.get_asset_input_info(asset_id).data
check(len(info) == 1 and info[0].file.container_format.startswith("mov,mp4"), f"input-info {info}")
video = [t for t in info[0].file.tracks if t.type == "video"]
audio = [t for t in info[0].file.tracks if t.type == "audio"]
check(video and video[0].encoding == "h264" and (video[0].width, video[0].height) == (160, 120)
      and abs(video[0].frame_rate - 15) < 0.01, f"input video track {video}")
check(audio and audio[0].encoding == "aac" and audio[0].channels >= 1 and audio[0].sample_rate, f"input audio track {audio}")

# Static renditions after the fact: mp4_support off (its files go), then an audio-only file asked for.
off = assets.update_asset_mp4_support(asset_id, mux_python.UpdateAssetMP4SupportRequest(mp4_support="none"))
check(off.data.mp4_support == "none", f"update_asset_mp4_support: {off.data.mp4_support}")
gone = requests.get(f"{base}/{a.playback_ids[0].id}/high.mp4")
check(gone.status_code == 404, f"high.mp4 removed with mp4_support none: {gone.status_code}")
made = assets.create_asset_static_rendition(asset_id, mux_python.CreateStaticRenditionRequest(resolution="audio-only"))
check(made.data.name == "audio.m4a" and made.data.status in ("preparing", "ready"), f"create_asset_static_rendition: {made}")
while time.time() < deadline:
    files = assets.get_asset(asset_id).data.static_renditions.files or []
    if any(f.name == "audio.m4a" and f.status == "ready" for f in files):
        break
    time.sleep(0.2)
m4a = requests.get(f"{base}/{a.playback_ids[0].id}/audio.m4a")
check(m4a.status_code == 200 and len(m4a.content) > 1000, f"audio.m4a downloads: {m4a.status_code}")
assets.delete_asset_static_rendition(asset_id, made.data.id)
check(requests.get(f"{base}/{a.playback_ids[0].id}/audio.m4a").status_code == 404, "deleted static rendition is gone")

# Text tracks: a WebVTT file served here, added, ready, deleted through the SDK's models.
class Subtitles(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"WEBVTT\n\n00:00.200 --> 00:01.500\nHello from the SDK\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


subs_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Subtitles)
threading.Thread(target=subs_server.serve_forever, daemon=True).start()
subs_url = f"http://127.0.0.1:{subs_server.server_address[1]}/en.vtt"
track = assets.create_asset_track(asset_id, mux_python.CreateTrackRequest(
    url=subs_url, type="text", text_type="subtitles", language_code="en", name="English",
    closed_captions=False, passthrough="sdk-track"))
check(track is not None and track.data.type == "text" and track.data.status == "preparing",
      f"create_asset_track: {track}")
deadline = time.time() + 30
while time.time() < deadline:
    texts = [t for t in assets.get_asset(asset_id).data.tracks if t.type == "text"]
    if texts and texts[0].status == "ready":
        break
    time.sleep(0.2)
check(texts and texts[0].id == track.data.id and texts[0].status == "ready" and texts[0].text_source == "uploaded"
      and texts[0].language_code == "en" and texts[0].name == "English", f"the text track is ready: {texts}")
vtt = requests.get(f"{base}/{a.playback_ids[0].id}/text/{track.data.id}.vtt")
check(vtt.status_code == 200 and "Hello from the SDK" in vtt.text, f"the track's file: {vtt.status_code} {vtt.text}")
assets.delete_asset_track(asset_id, track.data.id)
check(not [t for t in assets.get_asset(asset_id).data.tracks if t.type == "text"], "delete_asset_track")

# A clip of the asset: the SDK's own InputSettings with start_time and end_time.
clip_asset = assets.create_asset(mux_python.CreateAssetRequest(
    input=[mux_python.InputSettings(url=f"mux://assets/{asset_id}", start_time=0.5, end_time=1.5)],
    playback_policy=[mux_python.PlaybackPolicy.PUBLIC])).data
check(clip_asset.ingest_type == "on_demand_clip", f"create_asset of a clip: {clip_asset}")
deadline = time.time() + 60
while time.time() < deadline and clip_asset.status == "preparing":
    time.sleep(0.2)
    clip_asset = assets.get_asset(clip_asset.id).data
check(clip_asset.status == "ready" and abs(clip_asset.duration - 1.0) < 0.1, f"the clip is ready, 1 s long: {clip_asset}")
assets.delete_asset(clip_asset.id)

listed = assets.list_assets(limit=25, page=1)
check(listed is not None and any(x.id == asset_id for x in listed.data), "list_assets has it")

pid = assets.create_asset_playback_id(asset_id, mux_python.CreatePlaybackIDRequest(
    policy=mux_python.PlaybackPolicy.SIGNED))
check(pid is not None and pid.data.policy == "signed" and pid.data.id, f"create_asset_playback_id: {pid}")

assets.delete_asset(asset_id)
try:
    assets.get_asset(asset_id)
    check(False, "deleted asset still readable")
except NotFoundException:
    pass

# Playback restrictions: every route, through the SDK's own models.
restrictions = mux_python.PlaybackRestrictionsApi(client)
made = restrictions.create_playback_restriction(mux_python.CreatePlaybackRestrictionRequest(
    referrer=mux_python.ReferrerDomainRestriction(allowed_domains=["*.example.com"], allow_no_referrer=False),
    user_agent=mux_python.UserAgentRestrictionRequest(allow_no_user_agent=False, allow_high_risk_user_agent=False)))
rid = made.data.id
check(made.data.referrer.allowed_domains == ["*.example.com"] and made.data.user_agent.allow_no_user_agent is False,
      f"create_playback_restriction: {made}")
check(restrictions.get_playback_restriction(rid).data.id == rid, "get_playback_restriction")
check(any(r.id == rid for r in restrictions.list_playback_restrictions(page=1, limit=10).data), "list_playback_restrictions")
ref = restrictions.update_referrer_domain_restriction(rid, mux_python.UpdateReferrerDomainRestrictionRequest(
    allowed_domains=["example.org"], allow_no_referrer=True))
check(ref.data.referrer.allowed_domains == ["example.org"] and ref.data.referrer.allow_no_referrer, f"referrer update {ref}")
ua = restrictions.update_user_agent_restriction(rid, mux_python.UpdateUserAgentRestrictionRequest(
    allow_no_user_agent=True, allow_high_risk_user_agent=True))
check(ua.data.user_agent.allow_high_risk_user_agent and ua.data.referrer.allowed_domains == ["example.org"],
      f"user agent update keeps the referrer rule {ua}")
restrictions.delete_playback_restriction(rid)
try:
    restrictions.get_playback_restriction(rid)
    check(False, "deleted restriction still readable")
except NotFoundException:
    pass

bad = mux_python.Configuration(host=base)
bad.username, bad.password = cfg.username, "wrong"
try:
    mux_python.AssetsApi(mux_python.ApiClient(bad)).list_assets()
    check(False, "wrong secret accepted")
except ApiException as e:
    check(e.status == 401, f"wrong secret gives 401, got {e.status}")

print("ALL CHECKS PASSED")
