"""Uploads with Tencent's own server upload SDK (vod-python-sdk's VodUploadClient, which brings
cos-python-sdk-v5) against openvod: a file small enough for one PUT, one large enough for the
multipart path, with a cover, with and without a Procedure. The only change from Tencent's
example is where the two clients point (see POINT_AT_OPENVOD). Each upload must lead to a
NewFileUpload event with its FileId, the stored bytes must be the file's, and the named task flow
must finish with its outputs."""
import hashlib
import json
import os
import sys
import time

import requests
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models, vod_client

import qcloud_vod.vod_upload_client as vod_upload
from qcloud_vod.model import VodUploadRequest
from qcloud_vod.vod_upload_client import VodUploadClient

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


call("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"})
seen = {}


def events_until(done, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            pulled = call("PullEvents", {})
        except Exception as e:  # ResourceNotFound: nothing yet
            if "ResourceNotFound" not in str(e):
                raise
            continue
        handles = []
        for event in pulled.EventSet:
            handles.append(event.EventHandle)
            body = json.loads(event.to_json_string())
            seen.setdefault(body["EventType"], []).append(body)
        if handles:
            call("ConfirmEvents", {"EventHandles": handles})
        if done():
            return
    check(False, f"timed out waiting for {what}; events seen: {json.dumps(seen)[:2000]}")


def sha(path_or_bytes):
    data = open(path_or_bytes, "rb").read() if isinstance(path_or_bytes, str) else path_or_bytes
    return hashlib.sha256(data).hexdigest()


client = VodUploadClient(token_id, secret)
results = {}
cases = [
    ("small", os.environ["OPENVOD_SMALL"], None, None),
    ("large", os.environ["OPENVOD_LARGE"], os.environ["OPENVOD_COVER"], os.environ["OPENVOD_PROCEDURE"]),
]
for name, media, cover, procedure in cases:
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
    stored = requests.get(response.MediaUrl)
    check(stored.status_code == 200 and sha(stored.content) == sha(media), f"{name}: the stored bytes are the file's")
    if cover:
        check(response.CoverUrl, f"{name}: a CoverUrl")
        got = requests.get(response.CoverUrl)
        check(got.status_code == 200 and sha(got.content) == sha(cover), f"{name}: the stored cover is the file's")
    results[name] = response.FileId

events_until(lambda: {e["FileUploadEvent"]["FileId"] for e in seen.get("NewFileUpload", [])} >= set(results.values()), "NewFileUpload of both")
for name, file_id in results.items():
    event = next(e for e in seen["NewFileUpload"] if e["FileUploadEvent"]["FileId"] == file_id)
    info = event["FileUploadEvent"]["MediaBasicInfo"]
    check(info["Name"] == f"{name} upload", f"{name}: MediaBasicInfo.Name {info}")
    check(info["MediaUrl"].endswith(".mp4"), f"{name}: MediaBasicInfo.MediaUrl {info}")
    check(event["FileUploadEvent"]["MetaData"]["Duration"] > 0, f"{name}: MetaData {event}")
check(seen["NewFileUpload"][0]["FileUploadEvent"]["MediaBasicInfo"]["CoverUrl"] or
      any(e["FileUploadEvent"]["MediaBasicInfo"]["CoverUrl"] for e in seen["NewFileUpload"]), "a CoverUrl in NewFileUpload")

# The named task flow ran on the large upload (only), with its SessionContext.
def procedure_done():
    return any(e["ProcedureStateChangeEvent"]["FileId"] == results["large"] and e["ProcedureStateChangeEvent"]["Status"] == "FINISH"
               for e in seen.get("ProcedureStateChanged", []))


events_until(procedure_done, "ProcedureStateChanged of the large upload")
flow = next(e["ProcedureStateChangeEvent"] for e in seen["ProcedureStateChanged"] if e["ProcedureStateChangeEvent"]["FileId"] == results["large"])
check(flow["SessionContext"] == "session of large", f"SessionContext {flow}")
outputs = [r["TranscodeTask"]["Output"] for r in flow["MediaProcessResultSet"] if r["Type"] == "Transcode"]
check([o["Definition"] for o in outputs] == [100010], f"the flow's outputs {flow}")
check(requests.get(outputs[0]["Url"]).status_code == 200, "the flow's output is served")
check(not any(e["ProcedureStateChangeEvent"]["FileId"] == results["small"] for e in seen.get("ProcedureStateChanged", [])),
      "no flow for the upload that named none")

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

# DescribeEventsState: nothing left to pull once confirmed.
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
found = call("SearchMedia", {"Text": "upload", "Sort": {"Field": "CreateTime", "Order": "Asc"}})
check(found.TotalCount == 1 and found.MediaInfoSet[0].FileId == results["large"], f"text search {found}")
everything = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Asc"}, "Limit": 10})
# (Creation times have one-second steps, so files made in the same second may come in any order.)
check(everything.TotalCount == 3 and sorted(m.FileId for m in everything.MediaInfoSet) == sorted([results["small"], results["large"], pulled_id]),
      f"all media {everything}")
newest_first = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Desc"}, "Offset": 0, "Limit": 3})
check([m.FileId for m in newest_first.MediaInfoSet] == [m.FileId for m in reversed(everything.MediaInfoSet)], "Desc is the reverse of Asc")
page = call("SearchMedia", {"Sort": {"Field": "CreateTime", "Order": "Asc"}, "Offset": 1, "Limit": 1})
check(page.TotalCount == 3 and [m.FileId for m in page.MediaInfoSet] == [everything.MediaInfoSet[1].FileId], f"paging {page}")
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
