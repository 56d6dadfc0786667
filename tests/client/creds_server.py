"""A local credentials endpoint for tests/client/test_client_creds.c: the ECS/EKS
container endpoint and EC2 IMDSv2, both strict about their auth headers.

  GET  /container/creds                       container credentials; when
                                              "container_auth" is set, the
                                              Authorization header must equal it
  PUT  /latest/api/token                      IMDSv2 session token; requires
                                              X-aws-ec2-metadata-token-ttl-seconds
                                              in 1..21600
  GET  /latest/meta-data/iam/security-credentials/        the role name
  GET  /latest/meta-data/iam/security-credentials/ROLE    IMDS credentials
                                              (both need a valid
                                              X-aws-ec2-metadata-token: 401
                                              otherwise; IMDSv1 is off)
Control (JSON):
  POST /__ctl/config   merge: creds (list; fetch i gets creds[min(i, n-1)]),
                       container_auth, role, latency_ms, mode ("ok" | "badjson"
                       | "500" | "huge" | "nosecret"), revoke_imds_tokens (bool)
  GET  /__ctl/stats    request counters
  POST /__ctl/reset    defaults, counters zero
Binds 127.0.0.1 port 0 and prints {"port": N} as its first line.
"""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def defaults():
    return {"creds": [{"AccessKeyId": "ASIACONTAINER0001", "SecretAccessKey": "container-secret-1",
                       "Token": "container-token-1", "Expiration": "2099-01-01T00:00:00Z"}],
            "container_auth": None, "role": "s3grantd-instance", "latency_ms": 0, "mode": "ok",
            "revoke_imds_tokens": False}


STATE = {"cfg": defaults(), "stats": {}, "tokens": set(), "fetches": 0}


def bump(name):
    STATE["stats"][name] = STATE["stats"].get(name, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def creds_doc(self, imds):
        with LOCK:
            cfg = STATE["cfg"]
            i = STATE["fetches"]
            STATE["fetches"] += 1
            c = dict(cfg["creds"][min(i, len(cfg["creds"]) - 1)])
            mode = cfg["mode"]
            latency = cfg["latency_ms"]
        if latency:
            time.sleep(latency / 1000.0)   # the endpoint is slow; the test waits on callbacks
        if mode == "500":
            return 500, "oops"
        if mode == "badjson":
            return 200, '{"AccessKeyId": "ASIABROKEN", "SecretAccessKey": "leaked-secret-value", '
        if mode == "huge":
            return 200, '{"AccessKeyId": "' + "A" * 200000 + '"}'
        if mode == "nosecret":
            c.pop("SecretAccessKey", None)
        if imds:
            c = dict({"Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC"}, **c)
        else:
            c["RoleArn"] = "arn:aws:iam::111122223333:role/task"
        return 200, json.dumps(c)

    def imds_ok(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with LOCK:
            if tok and tok in STATE["tokens"]:
                return True
            bump("imds_unauthorized")
        self.reply(401, "", "text/plain")
        return False

    def do_PUT(self):
        self.body()
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                with LOCK:
                    bump("imds_token_bad")
                return self.reply(400, "", "text/plain")
            with LOCK:
                bump("imds_token")
                tok = "imds-session-%d-%s" % (STATE["stats"]["imds_token"], os.urandom(6).hex())
                STATE["tokens"].add(tok)
            return self.reply(200, tok, "text/plain")
        self.reply(404, "", "text/plain")

    def do_GET(self):
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == "/__ctl/stats":
            with LOCK:
                s = dict(STATE["stats"], fetches=STATE["fetches"])
            return self.reply(200, json.dumps(s))
        if self.path == "/container/creds":
            want = STATE["cfg"]["container_auth"]
            if want is not None and self.headers.get("Authorization") != want:
                with LOCK:
                    bump("container_unauthorized")
                return self.reply(401, '{"message":"unauthorized"}')
            with LOCK:
                bump("container")
            return self.reply(*self.creds_doc(False))
        if self.path == base:
            if not self.imds_ok():
                return
            with LOCK:
                bump("imds_role")
            return self.reply(200, STATE["cfg"]["role"] + "\n", "text/plain")
        if self.path.startswith(base):
            if not self.imds_ok():
                return
            if self.path[len(base):] != STATE["cfg"]["role"]:
                return self.reply(404, "", "text/plain")
            with LOCK:
                bump("imds_creds")
                if STATE["cfg"]["revoke_imds_tokens"]:
                    STATE["tokens"].clear()
            return self.reply(*self.creds_doc(True))
        self.reply(404, "", "text/plain")

    def do_POST(self):
        body = self.body()
        if self.path == "/__ctl/config":
            with LOCK:
                STATE["cfg"].update(json.loads(body or b"{}"))
            return self.reply(200, "{}")
        if self.path == "/__ctl/reset":
            with LOCK:
                STATE.update({"cfg": defaults(), "stats": {}, "tokens": set(), "fetches": 0})
            return self.reply(200, "{}")
        self.reply(404, "", "text/plain")


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    parent = os.getppid()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    while os.getppid() == parent:   # exit with the test process (SIGTERM also ends us)
        time.sleep(1)


main()
