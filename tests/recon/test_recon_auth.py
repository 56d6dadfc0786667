"""Integration authentication `auto` + awsRoleToAssume against an STS that
checks: moto_server with auth on (every call after the set-up is signed and
checked against IAM) serves STS; the S3 Control fake serves Access Grants and
knows no long-term key at all, only the session credentials STS hands out.

Set-up in moto (account 111122223333): IAM user "s3grantd" (the daemon's own
key) whose only policy allows sts:AssumeRole on role "s3grantd-integration";
that role trusts the user only with sts:ExternalId = the tenant id.

Between the daemon and moto sits a small forwarding proxy (the STS endpoint
the daemon is given): it relays every request unchanged (same Host, so moto
checks the daemon's own signature) and, before relaying an AssumeRole answer,
registers the session credentials in the S3 Control fake — as AWS would make
them valid everywhere. It also records each AssumeRole's ExternalId and
RoleSessionName. No timing is involved: the daemon cannot use the
credentials before the fake knows them.

  - the default chain (AWS_ACCESS_KEY_ID in the daemon's environment) +
    AssumeRole with ExternalId = tenant id: the integration is enabled, the
    caller-identity test names the assumed role and its s3grantd-* session,
    a subscription's grant is created with the session credentials and the
    provider is kept across passes (one AssumeRole for all of them); when the
    ExternalId changes the provider is rebuilt: STS refuses, the grant waits
    and the integration's health names the refused AssumeRole; set back, it
    is rebuilt again and the grant is made;
  - the [aws] key + a wrong ExternalId: createError with a status message
    naming AssumeRole and AccessDenied, and no secret anywhere;
  - an ExpiredToken answer makes the client assume the role again and
    re-sign; a skewed server clock is corrected (no reconciler retry needed).
Each case ends with SIGTERM and exit 0 (run under -DS3G_SANITIZE=ON too).

S3G_NEEDS: pg
S3G_TIMEOUT: 240
"""
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, FakeTestCase, gkey, wait_until  # noqa: E402

ALICE = "arn:aws:iam::%s:user/alice" % ACCOUNT
BOB = "arn:aws:iam::%s:role/analyst-bob" % ACCOUNT
CAROL = "arn:aws:iam::%s:user/carol" % ACCOUNT
ROLE_NAME = "s3grantd-integration"
ROLE_ARN = "arn:aws:iam::%s:role/%s" % (ACCOUNT, ROLE_NAME)
SETUP_CALLS = 4
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Moto:
    """moto_server with auth on after SETUP_CALLS unauthenticated calls."""

    def __init__(self):
        self.port = free_port()
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_CALLS), MOTO_ACCOUNT_ID=ACCOUNT)
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        self.endpoint = "http://127.0.0.1:%d" % self.port

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited early")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_until(listening, 60, "moto_server listening")

    def setup(self, tenant):
        import boto3
        kw = dict(endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                  aws_secret_access_key="setup")
        iam = boto3.client("iam", **kw)
        user = iam.create_user(UserName="s3grantd")["User"]                                       # 1
        key = iam.create_access_key(UserName="s3grantd")["AccessKey"]                             # 2
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": tenant}}}]}
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))           # 3
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}]}
        iam.put_user_policy(UserName="s3grantd", PolicyName="assume", PolicyDocument=json.dumps(policy))  # 4
        return key["AccessKeyId"], key["SecretAccessKey"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class StsBroker:
    """Forwards to moto unchanged; registers AssumeRole session credentials in
    the S3 Control fake before the caller sees them; records AssumeRole calls."""

    def __init__(self, upstream_port, fake):
        self.calls = []          # (form dict, HTTP status) per AssumeRole
        self.issued = []         # secrets handed out (checked absent from logs)
        self.tokens = []         # session tokens handed out
        broker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                conn.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("connection", "content-length"):
                        conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                r = conn.getresponse()
                data = r.read()
                form = dict(urllib.parse.parse_qsl(body.decode()))
                if form.get("Action") == "AssumeRole":
                    broker.calls.append((form, r.status))
                    if r.status == 200:
                        c = ET.fromstring(data).find(".//%sCredentials" % STS_NS)
                        akid, secret, token = (c.find(STS_NS + n).text
                                               for n in ("AccessKeyId", "SecretAccessKey", "SessionToken"))
                        broker.issued.append(secret)
                        broker.tokens.append(token)
                        fake.add_credentials(akid, secret, session_token=token, account=ACCOUNT)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "content-length", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ReconAuth(FakeTestCase):
    # No long-term key is valid at the fake: only what STS hands out.
    FAKE_ARGS = {"default_credentials": False}

    def setUp(self):
        super().setUp()
        self.e = Env(self.fake, prefix="ra")
        self.addCleanup(self.e.close)
        self.tenant = self.e.ctl("tenant").strip().split()[-1]
        self.moto = Moto()
        self.addCleanup(self.moto.stop)
        self.akid, self.secret = self.moto.setup(self.tenant)
        self.sts = StsBroker(self.moto.port, self.fake)
        self.addCleanup(self.sts.stop)
        # Hermetic AWS environment: no profile files, no ambient keys.
        for k in list(self.e.env):
            if k.startswith("AWS_"):
                del self.e.env[k]
        self.e.env.update(AWS_CONFIG_FILE="/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE="/nonexistent/creds",
                          AWS_EC2_METADATA_DISABLED="true")

    def create(self, name):
        doc = {"type": "Native S3",
               "config": {"name": name, "awsAccountId": ACCOUNT, "awsRegion": "us-east-1",
                          "awsLocationRole": "arn:aws:iam::%s:role/s3grantd-location" % ACCOUNT,
                          "awsLocationPath": "s3://", "authenticationType": "auto",
                          "awsRoleToAssume": ROLE_ARN}}
        self.e.ctl("integrations", "create", "-f", "-", stdin=json.dumps(doc))
        return int(self.e.sql("SELECT id FROM s3grant.integrations WHERE name = '%s'" % name).strip())

    def conf(self, extra=""):
        return "[aws]\nendpoint_url_sts = %s\n%s" % (self.sts.endpoint, extra)

    def test_default_chain_assume_role_with_tenant_external_id(self):
        e = self.e
        iid = self.create("assumed")
        e.env.update(AWS_ACCESS_KEY_ID=self.akid, AWS_SECRET_ACCESS_KEY=self.secret)
        d = e.daemon(self.conf())
        e.wait_status(iid, "enabled", timeout=60)
        session = "s3grantd-integration-%d" % iid
        tests = json.loads(e.sql("SELECT validation_results FROM s3grant.integrations WHERE id = %d" % iid))
        caller = tests["validationTests"][3]
        self.assertEqual(caller["status"], "passed", tests)
        self.assertIn(":assumed-role/%s/%s" % (ROLE_NAME, session), caller.get("message", ""))
        self.assertEqual([(self.fake.state()["locations"][0]["scope"])], ["s3://"])

        # A grant made with the session credentials (the fake knows no other key).
        e.user("alice", ALICE)
        ds = e.datasource(iid, "research-data/demographics")
        e.subscribe("alice", ds, "read")
        wait_until(lambda: sorted(gkey(g) for g in self.fake.grants()) ==
                   [(ALICE, "READ", "s3://research-data/demographics*")], 30, "grant created")
        wait_until(lambda: e.sql("SELECT count(*) FROM s3grant.audit_log WHERE operation = 'create'"
                                 " AND aws_request_id IS NOT NULL").strip() == "1", 20, "audit row with request id")
        d.wait_log("grant created")

        # AssumeRole: ExternalId = tenant id, our session name, once for every pass.
        self.assertEqual(len(self.sts.calls), 1, self.sts.calls)
        form, status = self.sts.calls[0]
        self.assertEqual(status, 200)
        self.assertEqual(form["RoleArn"], ROLE_ARN)
        self.assertEqual(form["ExternalId"], self.tenant)
        self.assertEqual(form["RoleSessionName"], session)
        line = d.wait_log("AWS credentials set up")
        self.assertIn("AWS default chain + AssumeRole", line)

        # The auth config changes (ExternalId): the provider is rebuilt, STS
        # refuses, the grant waits and the integration's health says why.
        e.sql("UPDATE s3grant.integrations SET external_id = 'not-the-tenant' WHERE id = %d" % iid)
        e.user("bob", BOB)
        e.subscribe("bob", ds, "write")
        err = wait_until(lambda: "AccessDenied" in self.last_error(iid) and self.last_error(iid), 30,
                         "health last_error naming the refused AssumeRole")
        self.assertIn("AssumeRole", err)
        self.assertIn(("not-the-tenant", 403), [(f["ExternalId"], s) for f, s in self.sts.calls])
        self.assertEqual(len(self.fake.grants()), 1)
        self.assertIn("AccessDenied", e.ctl("status", code=None))
        # ... and back: rebuilt again, the grant follows.
        e.sql("UPDATE s3grant.integrations SET external_id = NULL WHERE id = %d" % iid)
        want = sorted([(ALICE, "READ", "s3://research-data/demographics*"),
                       (BOB, "READWRITE", "s3://research-data/demographics*")])
        wait_until(lambda: sorted(gkey(g) for g in self.fake.grants()) == want, 60, "bob's grant created")
        ok = [f for f, s in self.sts.calls if s == 200]
        self.assertEqual([f["ExternalId"] for f in ok], [self.tenant, self.tenant])
        wait_until(lambda: self.last_error(iid) == "", 30, "health error cleared")
        self.graceful_stop(d)
        for s in [self.secret] + self.sts.issued:
            self.assertNotIn(s, d.stderr)

    def graceful_stop(self, d):
        """SIGTERM: the providers (assume-role refresh timers, STS clients)
        close before the HTTP engine; exit 0 (under -DS3G_SANITIZE=ON a leak
        or a use-after-free would change the exit code and print a report)."""
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=20), 0, d.stderr[-4000:])
        d.wait_log("msg=stopped")
        self.assertNotIn("Sanitizer", d.stderr)

    def test_expired_token_refreshed_and_skew_corrected(self):
        """What only the client layer does for the reconciler: an ExpiredToken
        answer drops the session, AssumeRole runs again and the call is
        re-signed; a server clock 20 minutes ahead (RequestTimeTooSkewed) is
        corrected from <ServerTime> and the call re-signed."""
        e = self.e
        iid = self.create("refresh")
        e.env.update(AWS_ACCESS_KEY_ID=self.akid, AWS_SECRET_ACCESS_KEY=self.secret)
        d = e.daemon(self.conf())
        e.wait_status(iid, "enabled", timeout=60)
        self.assertEqual(len(self.sts.tokens), 1)
        e.user("alice", ALICE)
        e.user("carol", CAROL)
        ds = e.datasource(iid, "research-data/demographics")

        self.fake.config(expired_tokens=list(self.sts.tokens))
        self.fake.clear_stats()
        e.subscribe("alice", ds, "read")
        wait_until(lambda: [gkey(g) for g in self.fake.grants()] ==
                   [(ALICE, "READ", "s3://research-data/demographics*")], 30, "grant after the refresh")
        self.assertGreaterEqual(self.fake.stats()["by_code"].get("ExpiredToken", 0), 1)
        self.assertEqual([s for _, s in self.sts.calls], [200, 200])

        self.fake.config(clock_offset_ms=20 * 60 * 1000)
        self.fake.clear_stats()
        e.subscribe("carol", ds, "write")
        want = sorted([(ALICE, "READ", "s3://research-data/demographics*"),
                       (CAROL, "READWRITE", "s3://research-data/demographics*")])
        wait_until(lambda: sorted(gkey(g) for g in self.fake.grants()) == want, 30, "grant after the skew")
        self.assertGreaterEqual(self.fake.stats()["by_code"].get("RequestTimeTooSkewed", 0), 1)
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.subscriptions WHERE status <> 'active'").strip(), "0")
        self.assertNotIn("reconcile failed", d.stderr)
        self.graceful_stop(d)

    def last_error(self, iid):
        return self.e.sql("SELECT coalesce(last_error, '') FROM s3grant.integration_health WHERE integration_id = %d"
                          % iid).strip()

    def test_wrong_external_id_is_a_clear_error(self):
        e = self.e
        iid = self.create("wrong-extid")
        e.sql("UPDATE s3grant.integrations SET external_id = 'not-the-tenant' WHERE id = %d" % iid)
        d = e.daemon(self.conf("access_key_id = %s\nsecret_access_key = %s\n" % (self.akid, self.secret)))
        e.wait_status(iid, "createError", timeout=60)
        msg = e.sql("SELECT status_message FROM s3grant.integrations WHERE id = %d" % iid).strip()
        self.assertIn("AssumeRole", msg)
        self.assertIn("AccessDenied", msg)
        self.assertIn("credentials", msg)
        tests = json.loads(e.sql("SELECT validation_results FROM s3grant.integrations WHERE id = %d" % iid))
        self.assertEqual(tests["status"], "failed")
        self.assertEqual(tests["validationTests"][3]["status"], "failed", tests)
        self.assertEqual({t["status"] for t in tests["validationTests"][4:]}, {"skipped"}, tests)
        # STS was asked with the configured (wrong) ExternalId and refused.
        self.assertTrue(self.sts.calls)
        self.assertEqual({(f["ExternalId"], s) for f, s in self.sts.calls}, {("not-the-tenant", 403)})
        self.assertEqual(self.fake.state()["locations"], [])
        line = d.wait_log("AWS credentials set up")
        self.assertIn("static key + AssumeRole", line)
        self.graceful_stop(d)
        for text in (msg, d.stderr, json.dumps(tests)):
            self.assertNotIn(self.secret, text)


if __name__ == "__main__":
    unittest.main()
