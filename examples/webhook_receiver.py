#!/usr/bin/env python3
"""A webhook receiver for trying Forklift's webhooks on one machine.

Listens on 127.0.0.1:PORT (default 9000), answers every POST with 204 and
prints one line per delivery: the event, the build and the channel. With
FORKLIFT_WEBHOOK_SECRET set it checks the HMAC-SHA256 signature first and
answers 401 when it does not match (see docs/webhooks.md).
"""
import hashlib
import hmac
import http.server
import json
import os
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        secret = os.environ.get("FORKLIFT_WEBHOOK_SECRET")
        if secret:
            ts = self.headers.get("X-Forklift-Timestamp", "")
            want = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            got = self.headers.get("X-Forklift-Signature", "").removeprefix("sha256=")
            if not hmac.compare_digest(want, got):
                self.send_response(401)
                self.end_headers()
                return
        event = json.loads(body or b"{}")
        package = (event.get("package") or {}).get("filename", "-")
        print("webhook:", event.get("type"), package, event.get("channel"), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
http.server.HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
