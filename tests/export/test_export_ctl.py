"""s3grantctl export-config set|get and export run|status against a real
Postgres: the seed's two JSON bodies, field-naming errors, the secret sealed
at rest and redacted on output, a manual export request with its NOTIFY.
Saves here skip the AWS check (`--no-verify`); one test shows the check
runs by default and an unreachable AWS fails it with exit code 6 and nothing
saved (the check against moto: test_export_s3_moto.py).
S3G_NEEDS: pg
"""
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import unittest

from pgtmp import fresh_db, psql

BUILD = os.environ.get("S3G_BUILD_DIR", "build")
CTL = os.path.join(BUILD, "ctl", "s3grantctl")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

KEYS = {"bucket": "access-summary-bucket", "region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": SECRET, "path": "immuta/exports"}
ROLE = {"bucket": "access-summary-bucket", "region": "eu-west-1",
        "roleArn": "arn:aws:iam::123456789012:role/access-summary-export", "path": "exports",
        "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "timeOfDay": "05:00", "timezone": "Europe/Berlin"}


IDENTITY = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            b'<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/exporter</Arn><UserId>AIDAEXAMPLE</UserId>'
            b'<Account>123456789012</Account></GetCallerIdentityResult>'
            b'<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>')
REDIRECT = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are '
            b'attempting to access must be addressed using the specified endpoint. Please send all future requests '
            b'to this endpoint.</Message><Endpoint>access-summary-bucket.s3.eu-central-1.amazonaws.com</Endpoint>'
            b'<Bucket>access-summary-bucket</Bucket><RequestId>r-2</RequestId><HostId>h</HostId></Error>')


class WrongRegionAws(http.server.BaseHTTPRequestHandler):
    """STS answers; S3 says the bucket lives in eu-central-1 (what AWS does
    for a bucket addressed through another region's endpoint)."""

    def reply(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(200, IDENTITY, [("Content-Type", "text/xml")])

    def do_GET(self):
        self.reply(301, REDIRECT, [("Content-Type", "application/xml"), ("x-amz-bucket-region", "eu-central-1")])

    def log_message(self, *args):
        pass


class ExportCtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_db("exctl")
        cls.tmp = tempfile.mkdtemp(prefix="s3g-exctl-")
        cls.key = os.path.join(cls.tmp, "secrets-key")
        with open(cls.key, "w") as f:
            f.write("22" * 32 + "\n")
        r = cls.ctl(["db", "migrate"])
        assert r.returncode == 0, r.stderr

    @classmethod
    def ctl(cls, args, doc=None, json_out=False):
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=cls.key)
        argv = [CTL, "--db", cls.db] + (["--json"] if json_out else []) + args
        stdin = json.dumps(doc) if isinstance(doc, dict) else doc
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    def set_ok(self, doc):
        r = self.ctl(["export-config", "set", "-f", "-", "--no-verify"], doc, json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def set_bad(self, doc, field, code=3):
        r = self.ctl(["export-config", "set", "-f", "-"], doc)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        self.assertIn(field + ":", r.stderr)
        return r.stderr

    def test_access_key_body(self):
        out = self.set_ok(KEYS)
        self.assertEqual(out["authenticationType"], "accessKey")
        self.assertEqual(out["secretAccessKey"], "<REDACTED>")
        self.assertEqual(out["path"], "immuta/exports")
        self.assertIsNone(out["timeOfDay"])
        stored = psql(self.db, "SELECT encode(secret_access_key, 'escape') FROM s3grant.export_config")
        self.assertNotIn(SECRET, stored)
        self.assertEqual(psql(self.db, "SELECT get_byte(secret_access_key, 0) FROM s3grant.export_config").strip(), "1")
        r = self.ctl(["export-config", "get"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("<REDACTED>", r.stdout)
        self.assertNotIn(SECRET, r.stdout)

    def test_role_body(self):
        out = self.set_ok(ROLE)
        self.assertEqual(out["authenticationType"], "assumeRole")
        self.assertEqual(out["roleArn"], ROLE["roleArn"])
        tenant = psql(self.db, "SELECT id FROM s3grant.tenant").strip()
        self.assertEqual(out["externalId"], tenant)
        self.assertEqual(out["timeOfDay"], "05:00")
        self.assertEqual(out["timezone"], "Europe/Berlin")
        self.assertEqual(out["kmsKeyId"], ROLE["kmsKeyId"])
        self.assertNotIn("secretAccessKey", out)
        # back to keys: the role is gone
        out = self.set_ok(KEYS)
        self.assertNotIn("roleArn", out)

    def test_field_errors(self):
        self.set_bad(dict(KEYS, bucket="Bad_Bucket"), "bucket")
        self.set_bad(dict(KEYS, bucket="ab"), "bucket")
        self.set_bad(dict(KEYS, region="us-east"), "region")
        self.set_bad(dict(ROLE, roleArn="arn:aws:iam::123:role/x"), "roleArn")
        self.set_bad(dict(ROLE, roleArn="arn:aws:iam::123456789012:user/x"), "roleArn")
        self.set_bad(dict(ROLE, timeOfDay="25:00"), "timeOfDay")
        self.set_bad(dict(ROLE, timeOfDay="3am"), "timeOfDay")
        err = self.set_bad(dict(ROLE, timezone="Mars/Olympus_Mons"), "timezone")
        self.assertIn("unknown time zone", err)
        self.set_bad(dict(KEYS, path="a/../b"), "path")
        self.set_bad({k: v for k, v in KEYS.items() if k != "secretAccessKey"}, "secretAccessKey")
        self.set_bad({k: v for k, v in KEYS.items() if k != "bucket"}, "bucket")
        self.set_bad(dict(KEYS, roleArn=ROLE["roleArn"]), "roleArn")
        self.set_bad(dict(KEYS, bukket="x"), "bukket")
        self.set_bad(dict(KEYS, kmsKeyId="not a key"), "kmsKeyId")
        self.set_bad(dict(KEYS, region=5), "region")
        r = self.ctl(["export-config", "set", "-f", "-"], "{not json")
        self.assertEqual(r.returncode, 3)
        self.assertNotIn(SECRET, r.stderr)

    def test_aws_check_runs_by_default(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = "http://127.0.0.1:%d" % s.getsockname()[1]
        s.close()   # nothing listens there: connection refused
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=self.key, AWS_ENDPOINT_URL=closed)
        psql(self.db, "DELETE FROM s3grant.export_config")
        doc = dict(KEYS, path="unchecked")
        r = subprocess.run([CTL, "--db", self.db, "export-config", "set", "-f", "-"], input=json.dumps(doc),
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
        self.assertIn("export-config not saved: GetCallerIdentity", r.stderr)
        self.assertIn("cannot reach AWS", r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        self.assertEqual(psql(self.db, "SELECT count(*) FROM s3grant.export_config").strip(), "0")
        # field errors are still reported first, without any AWS call
        r = subprocess.run([CTL, "--db", self.db, "export-config", "set", "-f", "-"],
                           input=json.dumps(dict(doc, kmsKeyId="not a key")), capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("kmsKeyId:", r.stderr)

    def test_aws_check_wrong_region(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WrongRegionAws)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=self.key,
                   AWS_ENDPOINT_URL="http://127.0.0.1:%d" % srv.server_address[1])
        r = subprocess.run([CTL, "--db", self.db, "export-config", "set", "-f", "-"], input=json.dumps(KEYS),
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
        self.assertIn("ListObjectsV2 s3://access-summary-bucket/immuta/exports/", r.stderr)
        self.assertIn("PermanentRedirect", r.stderr)
        self.assertIn("bucket access-summary-bucket is in region eu-central-1, not us-east-1: fix region", r.stderr)

    def test_export_run(self):
        # the request is a pending row (plus a NOTIFY: tests/export/test_export_sched.c)
        r = self.ctl(["export", "run"], json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["status"], "pending")
        row = psql(self.db, "SELECT kind || ' ' || status || ' ' || (local_day IS NULL) FROM s3grant.exports"
                   " WHERE id = %d" % out["id"]).strip()
        self.assertEqual(row, "manual pending true")
        r = self.ctl(["export", "status"], json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["status"], "pending")


if __name__ == "__main__":
    unittest.main()
