"""Signs playback tokens the way Python apps do, with PyJWT, and plays a signed playback id.

HS256: the key's private_key string is the secret, used as is:
    jwt.encode(payload, secret, "HS256", headers={"kid": key_id})
RS256: the private_key is a base64 PKCS#1 PEM, decoded once.
"""
import base64
import os
import sys
import time

import jwt
import requests

base = os.environ["OPENVOD_URL"]
auth = (os.environ["OPENVOD_TOKEN_ID"], os.environ["OPENVOD_TOKEN_SECRET"])
pid = os.environ["OPENVOD_PLAYBACK_ID"]


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)


hs = requests.post(base + "/system/v1/signing-keys", auth=auth, json={"algorithm": "HS256"})
check(hs.status_code == 201, f"create HS256 key: {hs.status_code} {hs.text}")
hs = hs.json()["data"]
rs = requests.post(base + "/system/v1/signing-keys", auth=auth)
check(rs.status_code == 201, f"create RS256 key: {rs.status_code}")
rs = rs.json()["data"]

claims = {"sub": pid, "aud": "v", "exp": int(time.time()) + 600}
hs_token = jwt.encode(claims, hs["private_key"], "HS256", headers={"kid": hs["id"]})
rs_token = jwt.encode(claims, base64.b64decode(rs["private_key"]), "RS256", headers={"kid": rs["id"]})
rs_payload_kid = jwt.encode({**claims, "kid": rs["id"]}, base64.b64decode(rs["private_key"]), "RS256")

for name, token in [("HS256", hs_token), ("RS256", rs_token), ("RS256 kid in payload", rs_payload_kid)]:
    r = requests.get(f"{base}/{pid}.m3u8", params={"token": token})
    check(r.status_code == 200 and r.text.startswith("#EXTM3U"), f"{name}: {r.status_code} {r.text}")
    child = next(line for line in r.text.splitlines() if not line.startswith("#"))
    r = requests.get(f"{base}/{child}")
    check(r.status_code == 200, f"{name}: child playlist without token: {r.status_code}")

thumb = jwt.encode({**claims, "aud": "t", "width": 32}, hs["private_key"], "HS256", headers={"kid": hs["id"]})
r = requests.get(f"{base}/{pid}/thumbnail.png", params={"token": thumb})
check(r.status_code == 200 and r.headers["content-type"] == "image/png", f"thumbnail: {r.status_code}")

bad = jwt.encode(claims, "not-the-secret", "HS256", headers={"kid": hs["id"]})
r = requests.get(f"{base}/{pid}.m3u8", params={"token": bad})
check(r.status_code == 403 and "signature" in r.json()["error"]["messages"][0], f"wrong secret: {r.status_code}")
print("ALL CHECKS PASSED")
