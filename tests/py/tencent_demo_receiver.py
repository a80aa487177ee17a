"""A Tencent VOD event receiver written the way Tencent's `callback_scf` demo works (our own code,
following its logic as described in shared/specs/tencent-vod.md section 1), served over HTTP.

It reads config.json from the working directory on every event, calls ProcessMedia with a VodClient
built without a ClientProfile (so it targets vod.tencentcloudapi.com), passes `subappid` as it is in
the config (the installer writes the string "0"), and prints one line per transcode output.
The only harness addition: the endpoint default is redirected to openvod, as a sitecustomize would.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from tencentcloud.common.profile import http_profile

_original_init = http_profile.HttpProfile.__init__


def _pointed_at_openvod(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.endpoint = os.environ["OPENVOD_TC_ENDPOINT"]
    self.protocol = "http"
    self.scheme = "http"


http_profile.HttpProfile.__init__ = _pointed_at_openvod

from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.vod.v20180717 import models, vod_client  # noqa: E402

OK, BAD = 200, 400


def handle(body_text):
    try:
        body = json.loads(body_text)
        conf = json.load(open("config.json"))
        event_type = body["EventType"]
        if event_type == "NewFileUpload":
            file_id = body.get("FileUploadEvent", {}).get("FileId")
            if not file_id:
                return BAD
            params = {"FileId": file_id,
                      "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": d} for d in conf["definitions"]]}}
            if "subappid" in conf:
                params["SubAppId"] = conf["subappid"]
            client = vod_client.VodClient(credential.Credential(conf["secret_id"], conf["secret_key"]), conf["region"])
            request = models.ProcessMediaRequest()
            request.from_json_string(json.dumps(params))
            try:
                print(client.ProcessMedia(request).to_json_string(), flush=True)
            except TencentCloudSDKException as e:
                print(e, flush=True)
                return BAD
            return OK
        if event_type == "ProcedureStateChanged":
            event = body.get("ProcedureStateChangeEvent")
            if event is None:
                return BAD
            if event["Status"] != "FINISH":
                return OK
            if event["ErrCode"] != 0:
                print(f"Procedure failed. FileId: {event['FileId']}, TaskId: {event['TaskId']}, ErrCode: {event['ErrCode']}", flush=True)
                return BAD
            for result in event["MediaProcessResultSet"]:
                if result["Type"] != "Transcode":
                    continue
                task = result.get("TranscodeTask")
                if not task or "Input" not in task:
                    continue
                if task["ErrCode"] != 0:
                    print(f"Transcode failed. FileId: {event['FileId']}, Definition: {task['Input']['Definition']}, ErrCode: {task['ErrCode']}", flush=True)
                else:
                    print(f"Transcode succeeded. FileId: {event['FileId']}, Definition: {task['Input']['Definition']}, Url: {task['Output']['Url']}", flush=True)
            return OK
        return OK
    except (KeyError, ValueError, TypeError) as e:
        print(f"bad event: {e!r}", flush=True)
        return BAD


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        status = handle(self.rfile.read(length).decode("utf-8"))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        if status != OK:
            self.wfile.write(b"Bad Request")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
sys.stdout.flush()
server.serve_forever()
