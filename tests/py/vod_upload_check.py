"""Uploads with Tencent's own server upload SDK (vod-python-sdk's VodUploadClient, which brings
cos-python-sdk-v5) against openvod: a file small enough for one PUT and one large enough for the
multipart path, each with and without a cover, the large one with and without a Procedure. The
only change from Tencent's example is where the two clients point (see POINT_AT_OPENVOD). Each
upload must take the COS path its size calls for, lead to a NewFileUpload pushed to a receiver
(signed with its SignKey) with its FileId, the stored bytes must be the file's, and the named task
flow must finish with its outputs."""
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models, vod_client

import qcloud_vod.vod_upload_client as vod_upload
from qcloud_vod.model import VodUploadRequest
from qcloud_vod.vod_upload_client import VodUploadClient
from qcloud_cos import CosS3Client

base = os.environ["OPENVOD_URL"]
token_id, secret = os.environ["OPENVOD_TOKEN_ID"], os.environ["OPENVOD_TOKEN_SECRET"]
host = base.split("://", 1)[1]


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)


# POINT_AT_OPENVOD: VodUploadClient builds its two clients itself; give them openvod's address.
class OpenvodVodClient(vod_client.VodClient):
    def __init__(self, cred, region, profile=None):
        super().__init__(cred, region, ClientProfile(httpProfile=HttpProfile(endpoint=host, protocol="http")))


class _VodClientModule:
    VodClient = OpenvodVodClient


_CosConfig = vod_upload.CosConfig
vod_upload.vod_client = _VodClientModule
vod_upload.CosConfig = lambda **kw: _CosConfig(Domain=host, Scheme="http", **kw)
# End of POINT_AT_OPENVOD.

api = OpenvodVodClient(credential.Credential(token_id, secret), "ap-guangzhou")


def call(action, params):
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    return getattr(api, action)(request)


# A push-mode receiver as Tencent's callback demos write one: it checks Sign = md5(SignKey + T)
# and that T (the expiry) is still ahead, and answers 403 otherwise.
SIGN_KEY = "ReceiverKey42"
pushed = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        t = int(body.get("T", 0))
        signed = body.get("Sign") == hashlib.md5(f"{SIGN_KEY}{t}".encode()).hexdigest() and t > time.time()
        if signed:
            pushed.append(body)
        self.send_response(200 if signed else 403)
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
call("ModifyEventConfig", {"Mode": "PUSH", "NotificationUrl": f"http://127.0.0.1:{receiver.server_port}/callback",
                           "SignKey": SIGN_KEY, "UploadMediaCompleteEventSwitch": "ON"})
seen = {}


def events_until(done, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen.clear()
        for body in list(pushed):  # at least once: a retried delivery may come twice
            seen.setdefault(body["EventType"], []).append(body)
        if done():
            return
        time.sleep(0.2)
    check(False, f"timed out waiting for {what}; events seen: {json.dumps(seen)[:2000]}")


# Which COS calls the SDK makes, by object key, to tell the single-PUT path from multipart.
cos_calls = []
for _method in ("put_object", "create_multipart_upload", "upload_part", "complete_multipart_upload"):
    def _recording(self, *args, _original=getattr(CosS3Client, _method), _name=_method, **kwargs):
        cos_calls.append((_name, kwargs.get("Key", args[1] if len(args) > 1 else None)))
        return _original(self, *args, **kwargs)
    setattr(CosS3Client, _method, _recording)


def sha(path_or_bytes):
    data = open(path_or_bytes, "rb").read() if isinstance(path_or_bytes, str) else path_or_bytes
    return hashlib.sha256(data).hexdigest()


client = VodUploadClient(token_id, secret)
results = {}
small, large, cover_file = os.environ["OPENVOD_SMALL"], os.environ["OPENVOD_LARGE"], os.environ["OPENVOD_COVER"]
check(os.path.getsize(small) < 1 << 20 < os.path.getsize(large), "one file under the SDK's 1 MB single-PUT limit, one over")
cases = [
    ("small", small, None, None),
    ("small cover", small, cover_file, None),
    ("large", large, None, None),
    ("large flow", large, cover_file, os.environ["OPENVOD_PROCEDURE"]),
]
for name, media, cover, procedure in cases:
    calls_before = len(cos_calls)
    request = VodUploadRequest()
    request.MediaFilePath = media
    request.MediaName = f"{name} upload"
    if cover:
        request.CoverFilePath = cover
    if procedure:
        request.Procedure = procedure
        request.SessionContext = f"session of {name}"
    response = client.upload("ap-guangzhou", request)
    check(response.FileId and response.MediaUrl, f"{name}: CommitUpload answer {response}")
    calls = cos_calls[calls_before:]
    media_calls = {method for method, key in calls if key and key.rsplit("/", 1)[-1].startswith("media.")}
    if media is large:
        check({"create_multipart_upload", "upload_part", "complete_multipart_upload"} <= media_calls
              and "put_object" not in media_calls, f"{name}: the media went multipart: {calls}")
    else:
        check(media_calls == {"put_object"}, f"{name}: the media went in one PUT: {calls}")
    cover_calls = {method for method, key in calls if key and key.rsplit("/", 1)[-1].startswith("cover.")}
    check(cover_calls == ({"put_object"} if cover else set()), f"{name}: the cover's calls: {calls}")
    stored = requests.get(response.MediaUrl)
    check(stored.status_code == 200 and sha(stored.content) == sha(media), f"{name}: the stored bytes are the file's")
    if cover:
        check(response.CoverUrl, f"{name}: a CoverUrl")
        got = requests.get(response.CoverUrl)
        check(got.status_code == 200 and sha(got.content) == sha(cover), f"{name}: the stored cover is the file's")
    results[name] = response.FileId

events_until(lambda: {e["FileUploadEvent"]["FileId"] for e in seen.get("NewFileUpload", [])} >= set(results.values()), "NewFileUpload of every upload")
for name, media, cover, _ in cases:
    file_id = results[name]
    event = next(e for e in seen["NewFileUpload"] if e["FileUploadEvent"]["FileId"] == file_id)
    info = event["FileUploadEvent"]["MediaBasicInfo"]
    check(info["Name"] == f"{name} upload", f"{name}: MediaBasicInfo.Name {info}")
    check(info["MediaUrl"].endswith(".mp4"), f"{name}: MediaBasicInfo.MediaUrl {info}")
    check(event["FileUploadEvent"]["MetaData"]["Duration"] > 0, f"{name}: MetaData {event}")
    if cover:
        check(info["CoverUrl"], f"{name}: a CoverUrl in NewFileUpload {info}")

# The named task flow ran on the upload that named it (only), with its SessionContext.
def procedure_done():
    return any(e["ProcedureStateChangeEvent"]["FileId"] == results["large flow"] and e["ProcedureStateChangeEvent"]["Status"] == "FINISH"
               for e in seen.get("ProcedureStateChanged", []))


events_until(procedure_done, "ProcedureStateChanged of the large flow upload")
flow = next(e["ProcedureStateChangeEvent"] for e in seen["ProcedureStateChanged"] if e["ProcedureStateChangeEvent"]["FileId"] == results["large flow"])
check(flow["SessionContext"] == "session of large flow", f"SessionContext {flow}")
outputs = [r["TranscodeTask"]["Output"] for r in flow["MediaProcessResultSet"] if r["Type"] == "Transcode"]
check([o["Definition"] for o in outputs] == [100010], f"the flow's outputs {flow}")
check(requests.get(outputs[0]["Url"]).status_code == 200, "the flow's output is served")
flowless = {results[name] for name in ("small", "small cover", "large")}
check(not any(e["ProcedureStateChangeEvent"]["FileId"] in flowless for e in seen.get("ProcedureStateChanged", [])),
      "no flow for the uploads that named none")

# PullUpload: openvod fetches a URL; the pull task is reported, then NewFileUpload.
pull = call("PullUpload", {"MediaUrl": os.environ["OPENVOD_PULL_URL"], "MediaName": "pulled lecture", "SessionContext": "pull ctx"})
check(pull.TaskId, f"PullUpload answer {pull}")
deadline = time.time() + 60
while True:
    detail = call("DescribeTaskDetail", {"TaskId": pull.TaskId})
    if detail.Status == "FINISH" or time.time() > deadline:
        break
    time.sleep(0.3)
check(detail.TaskType == "PullUpload" and detail.Status == "FINISH", f"pull task {detail}")
pulled_id = detail.PullUploadTask.FileId
check(pulled_id and detail.PullUploadTask.ErrCode == 0 and detail.PullUploadTask.MediaBasicInfo.Name == "pulled lecture", f"pull task {detail}")
check(detail.PullUploadTask.SessionContext == "pull ctx", f"pull task context {detail}")
events_until(lambda: any(e["FileUploadEvent"]["FileId"] == pulled_id for e in seen.get("NewFileUpload", [])), "NewFileUpload of the pulled file")
refused = None
try:
    call("PullUpload", {"MediaUrl": "file:///etc/passwd"})
except Exception as e:
    refused = str(e)
check(refused and "InvalidParameterValue.MediaUrl" in refused, f"a file: URL is refused: {refused}")

# DescribeEventsState: in push mode nothing waits to be pulled.
check(call("DescribeEventsState", {}).CountOfEventsToPull == 0, "no events left to pull")

# ModifyMediaInfo: name, description, expiry and a new cover.
png = open(os.environ["OPENVOD_COVER_PNG"], "rb").read()
import base64
modified = call("ModifyMediaInfo", {"FileId": results["small"], "Name": "Renamed", "Description": "About the small one",
                                    "ExpireTime": "2099-01-02T03:04:05Z", "CoverData": base64.b64encode(png).decode()})
check(modified.CoverUrl.endswith(".png"), f"ModifyMediaInfo answer {modified}")
check(requests.get(modified.CoverUrl).content == png, "the new cover is served")
info = call("DescribeMediaInfos", {"FileIds": [results["small"]], "Filters": ["basicInfo"]}).MediaInfoSet[0]
check(info.BasicInfo.Name == "Renamed" and info.BasicInfo.Description == "About the small one", f"basic info {info}")
check(info.BasicInfo.ExpireTime == "2099-01-02T03:04:05Z" and info.BasicInfo.CoverUrl == modified.CoverUrl, f"basic info {info}")
check(info.MetaData is None and info.TranscodeInfo is None, f"Filters keep only basicInfo: {info}")

# SearchMedia: text, names, time range, sort, paging.
# (Creation times have one-second steps, so files made in the same second may come in any order.)
found = call("SearchMedia", {"Text": "upload", "Sort": {"Field": "CreateTime", "Order": "Asc"}})
check(found.TotalCount == 3 and sorted(m.FileId for m in found.MediaInfoSet) == sorted(results[n] for n in ("small cover", "large", "large flow")),
      f"text search (the renamed one no longer matches) {found}")
everything = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Asc"}, "Limit": 10})
check(everything.TotalCount == 5 and sorted(m.FileId for m in everything.MediaInfoSet) == sorted([*results.values(), pulled_id]),
      f"all media {everything}")
newest_first = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Desc"}, "Offset": 0, "Limit": 10})
check([m.FileId for m in newest_first.MediaInfoSet] == [m.FileId for m in reversed(everything.MediaInfoSet)], "Desc is the reverse of Asc")
page = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Asc"}, "Offset": 1, "Limit": 1})
check(page.TotalCount == 5 and [m.FileId for m in page.MediaInfoSet] == [everything.MediaInfoSet[1].FileId], f"paging {page}")
named = call("SearchMedia", {"Names": ["RENAMED", "pulled"]})
check(sorted(m.FileId for m in named.MediaInfoSet) == sorted([results["small"], pulled_id]), f"names {named}")
later = call("SearchMedia", {"CreateTime": {"After": "2099-01-01T00:00:00Z"}})
check(later.TotalCount == 0, f"time range {later}")
bad = None
try:
    call("SearchMedia", {"Sort": {"Field": "Size"}})
except Exception as e:
    bad = str(e)
check(bad and "InvalidParameterValue.Sort" in bad, f"bad sort refused: {bad}")

print(json.dumps(results))
print("ALL CHECKS PASSED")
