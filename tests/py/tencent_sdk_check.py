"""Drives openvod's Tencent VOD API with the unmodified tencentcloud-sdk-python-vod, over plain http."""
import json
import os
import sys
import time
from unittest import mock

import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models, vod_client

base = os.environ["OPENVOD_URL"]
token_id, secret = os.environ["OPENVOD_TOKEN_ID"], os.environ["OPENVOD_TOKEN_SECRET"]
host = base.split("://", 1)[1]


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)


def client(key=secret):
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=host, protocol="http"))
    return vod_client.VodClient(credential.Credential(token_id, key), "ap-guangzhou", profile)


def request(model, params):
    r = getattr(models, model + "Request")()
    r.from_json_string(json.dumps(params))
    return r


vod = client()
templates = vod.DescribeTranscodeTemplates(request("DescribeTranscodeTemplates", {"Definitions": [100010, 100020]}))
check(templates.TotalCount == 2 and templates.TranscodeTemplateSet[0].VideoTemplate.Height == 360, f"templates {templates}")

vod.ModifyEventConfig(request("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON", "DeleteMediaCompleteEventSwitch": "ON"}))
config = vod.DescribeEventConfig(request("DescribeEventConfig", {}))
check(config.Mode == "PULL" and config.UploadMediaCompleteEventSwitch == "ON", f"event config {config}")

# Upload through the direct-upload API, then wait until the file is known (probed).
auth = (token_id, secret)
upload = requests.post(base + "/video/v1/uploads", auth=auth, json={"new_asset_settings": {"playback_policy": "public"}}).json()["data"]
requests.put(upload["url"], data=open(os.environ["OPENVOD_CLIP"], "rb").read()).raise_for_status()
asset_id = requests.get(f"{base}/video/v1/uploads/{upload['id']}", auth=auth).json()["data"]["asset_id"]
file_id = requests.get(f"{base}/video/v1/assets/{asset_id}", auth=auth).json()["data"]["file_id"]
check(file_id.isdigit(), f"numeric FileId {file_id}")

deadline = time.time() + 60
while True:
    infos = vod.DescribeMediaInfos(request("DescribeMediaInfos", {"FileIds": [file_id], "SubAppId": "0"}))
    if infos.MediaInfoSet and infos.MediaInfoSet[0].MetaData and infos.MediaInfoSet[0].MetaData.Height:
        break
    check(time.time() < deadline, "the file is never probed")
    time.sleep(0.2)
check(infos.MediaInfoSet[0].MetaData.Height == 720, f"metadata {infos.MediaInfoSet[0].MetaData}")

# The demo's call, SubAppId as the string "0".
rsp = vod.ProcessMedia(request("ProcessMedia", {"FileId": file_id, "SubAppId": "0", "SessionId": "s-1",
                                               "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100010}, {"Definition": 100020}],
                                                                    "CoverBySnapshotTaskSet": [{"Definition": 10, "PositionType": "Percent", "PositionValue": 50}]}}))
check(rsp.TaskId and "procedurev2" in rsp.TaskId, f"ProcessMedia {rsp}")
try:
    vod.ProcessMedia(request("ProcessMedia", {"FileId": file_id, "SessionId": "s-1", "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100010}]}}))
    check(False, "a repeated SessionId was accepted")
except TencentCloudSDKException as e:
    check(e.code == "InvalidParameterValue.SessionId", f"SessionId dedupe: {e.code}")

deadline = time.time() + 120
while True:
    detail = vod.DescribeTaskDetail(request("DescribeTaskDetail", {"TaskId": rsp.TaskId}))
    if detail.Status == "FINISH":
        break
    check(time.time() < deadline, "the task never finishes")
    time.sleep(0.3)
results = detail.ProcedureTask.MediaProcessResultSet
transcodes = {r.TranscodeTask.Input.Definition: r.TranscodeTask for r in results if r.Type == "Transcode"}
check(set(transcodes) == {100010, 100020}, f"transcode results {results}")
for definition, height in [(100010, 360), (100020, 540)]:
    t = transcodes[definition]
    check(t.Status == "SUCCESS" and t.ErrCode == 0 and t.Output.Height == height and t.Output.Definition == definition, f"{definition}: {t}")
    body = requests.get(t.Output.Url).content
    check(len(body) == t.Output.Size and t.Output.Url.endswith(f"v.f{definition}.mp4"), f"{definition} downloads")
cover = [r for r in results if r.Type == "CoverBySnapshot"][0].CoverBySnapshotTask
check(cover.Status == "SUCCESS" and requests.get(cover.Output.CoverUrl).headers["content-type"] == "image/jpeg", f"cover {cover}")

infos = vod.DescribeMediaInfos(request("DescribeMediaInfos", {"FileIds": [file_id, "123"]}))
definitions = sorted(t.Definition for t in infos.MediaInfoSet[0].TranscodeInfo.TranscodeSet)
check(definitions == [0, 100010, 100020] and infos.NotExistFileIdSet == ["123"], f"media infos {definitions} {infos.NotExistFileIdSet}")

# Reliable mode: the upload and the procedure events are pulled, confirmed, and gone.
pulled = vod.PullEvents(request("PullEvents", {}))
types = [e.EventType for e in pulled.EventSet]
check(types == ["NewFileUpload", "ProcedureStateChanged"], f"pulled {types}")
check(pulled.EventSet[0].FileUploadEvent.FileId == file_id and pulled.EventSet[1].ProcedureStateChangeEvent.TaskId == rsp.TaskId, "event bodies")
vod.ConfirmEvents(request("ConfirmEvents", {"EventHandles": [e.EventHandle for e in pulled.EventSet]}))

vod.DeleteMedia(request("DeleteMedia", {"FileId": file_id}))
infos = vod.DescribeMediaInfos(request("DescribeMediaInfos", {"FileIds": [file_id]}))
check(infos.NotExistFileIdSet == [file_id], "deleted")
pulled = vod.PullEvents(request("PullEvents", {}))
check([e.EventType for e in pulled.EventSet] == ["FileDeleted"], "FileDeleted pulled")

for name, make, code in [
    ("wrong key", lambda: client("not-the-secret").DescribeEventConfig(request("DescribeEventConfig", {})), "AuthFailure.SignatureFailure"),
    ("unknown file", lambda: vod.ProcessMedia(request("ProcessMedia", {"FileId": "42", "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 100010}]}})), "ResourceNotFound.FileNotExist"),
]:
    try:
        make()
        check(False, f"{name} accepted")
    except TencentCloudSDKException as e:
        check(e.code == code, f"{name}: {e.code} {e.message}")
stale = time.time() - 1000
with mock.patch("time.time", return_value=stale):
    try:
        vod.DescribeEventConfig(request("DescribeEventConfig", {}))
        check(False, "a stale timestamp was accepted")
    except TencentCloudSDKException as e:
        check(e.code == "AuthFailure.SignatureExpire", f"stale: {e.code}")
print("ALL CHECKS PASSED")
