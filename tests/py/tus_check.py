"""Uploads with the real tuspy client: creation with metadata at /tus/, chunked PATCHes with
sha1 checksums, then a resume of a half-finished upload from a fresh client."""
import os
import sys

import requests
from tusclient import client as tus_client

base = os.environ["OPENVOD_URL"]
auth = (os.environ["OPENVOD_TOKEN_ID"], os.environ["OPENVOD_TOKEN_SECRET"])
path = os.environ["OPENVOD_CLIP"]
data = open(path, "rb").read()


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)


token = requests.auth._basic_auth_str(*auth)
tus = tus_client.TusClient(base + "/tus/", headers={"Authorization": token})
uploader = tus.uploader(path, chunk_size=4096, metadata={"filename": "clip.mp4", "passthrough": "tus-1"},
                        upload_checksum=True)
uploader.upload()
check(uploader.offset == len(data), f"offset {uploader.offset} of {len(data)}")

# Resume: a second client continues an upload left half done by the first.
half = tus.uploader(path, chunk_size=4096, metadata={"passthrough": "tus-2"})
half.upload(stop_at=len(data) // 2)
resumed = tus_client.TusClient(base + "/tus/", headers={"Authorization": token}).uploader(
    path, url=half.url, chunk_size=4096)
check(resumed.offset == half.offset and resumed.offset >= len(data) // 2, "resume starts at the server offset")
resumed.upload()

assets = requests.get(base + "/video/v1/assets", auth=auth).json()["data"]
by_passthrough = {a.get("passthrough"): a for a in assets}
check({"tus-1", "tus-2"} <= set(by_passthrough), f"assets created: {list(by_passthrough)}")
for name in ["tus-1", "tus-2"]:
    asset_id = by_passthrough[name]["id"]
    m = requests.put(f"{base}/video/v1/assets/{asset_id}/master-access", auth=auth,
                     json={"master_access": "temporary"}).json()["data"]["master"]
    body = requests.get(m["url"]).content
    check(body == data, f"{name}: master bytes equal the file")
print("ALL CHECKS PASSED")
