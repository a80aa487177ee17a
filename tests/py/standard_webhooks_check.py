"""Verifies captured Standard Webhooks deliveries with the reference `standardwebhooks` library."""
import json
import os
import sys

from standardwebhooks.webhooks import Webhook

secret = os.environ["WEBHOOK_SECRET"]
deliveries = json.load(open(os.environ["WEBHOOK_CAPTURE"]))
if not deliveries:
    print("FAILED: nothing captured")
    sys.exit(1)
wh = Webhook(secret)
for d in deliveries:
    payload = wh.verify(d["body"], d["headers"])  # raises on a bad signature or stale timestamp
    if payload["id"] != d["headers"]["webhook-id"]:
        print("FAILED: webhook-id differs from the event id")
        sys.exit(1)
try:
    Webhook(secret).verify(deliveries[0]["body"] + " ", deliveries[0]["headers"])
    print("FAILED: a tampered body verified")
    sys.exit(1)
except Exception:
    pass
print("ALL CHECKS PASSED")
