"""The access summary lands in S3: the real s3grantd and s3grantctl against
moto with SigV4 verification and IAM policies enforced.

moto starts with INITIAL_NO_AUTH_ACTION_COUNT = 3: an "admin" IAM user, its
policy and its key are created unauthenticated; every later call (the test's
own setup through the admin, the daemon, s3grantctl) is signed and checked.
The exporter user and role get exactly the permissions the seed lists, in the
form `s3grantctl policy export` prints them (s3:PutObject on bucket/path/*,
s3:ListBucket on the bucket with an s3:prefix condition, kms:GenerateDataKey
and kms:Decrypt on the key for the KMS export); the role trusts the daemon's
own IAM user with sts:ExternalId = the tenant id.

Shown: an export with access keys and one with role + ExternalId + SSE-KMS
both land (real daemon, `s3grantctl export run`); the objects parse and
match the database row for row, manifest counts and SHA-256 are right; with
s3:PutObject removed the scheduled export fails with a clear error in
`s3grantctl export status` and is retried once its retry time comes (then
succeeds, the policy restored); `export-config set` rejects bad credentials,
a missing s3:ListBucket, an unknown bucket and a role that does not trust
the daemon, each with its message and exit code 6.

moto 5.2.1 checks signatures against a URL whose query werkzeug has already
percent-decoded (prefix=a%2F becomes a/), so every correctly signed
ListObjectsV2 with a '/' in its prefix fails there with SignatureDoesNotMatch
(botocore's own requests too). fix_moto_raw_query() makes the in-process
server verify against the raw query string as sent, which is what SigV4 and
AWS do; nothing in s3grantd changes for it.
S3G_NEEDS: pg
S3G_TIMEOUT: 300
"""
import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon_harness import BUILD, Daemon  # noqa: E402
from pgtmp import fresh_db, psql  # noqa: E402

CTL = os.path.join(BUILD, "ctl", "s3grantctl")
ACCOUNT = "123456789012"        # moto's account
BUCKET = "access-summary-bucket"
SETUP_CALLS = 3                  # admin user, its policy, its key
CTL_AWS_CHECK = 6                # s3grantctl: the AWS-side check failed
NGRANTS = 40

SEED_SQL = """
INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path,
  authentication_type, status, location_id)
VALUES ('research', '111122223333', 'us-east-1', 'arn:aws:iam::111122223333:role/loc', 's3://research-data',
  'auto', 'disabled', 'loc-1');
INSERT INTO s3grant.users (username, principal)
  SELECT 'user' || g, CASE WHEN g % 2 = 0 THEN NULL ELSE 'arn:aws:iam::111122223333:role/r' || g END
  FROM generate_series(1, {n}) g;
INSERT INTO s3grant.data_sources (integration_id, prefix, name)
  SELECT 1, 'ds/' || g, 'Data source ' || g FROM generate_series(1, {n}) g;
INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)
  SELECT g, g, CASE WHEN g % 2 = 0 THEN 'read' ELSE 'write' END FROM generate_series(1, {n}) g;
INSERT INTO s3grant.grants (grant_id, integration_id, grant_arn, grantee_type, grantee_id, permission,
  location_id, sub_prefix, grant_scope, subscription_id, created_at)
  SELECT 'g-' || lpad(g::text, 5, '0'), 1, 'arn:aws:s3:us-east-1:111122223333:access-grants/default/grant/g-' || g,
    'IAM', coalesce(u.principal, 'arn:aws:iam::111122223333:user/' || u.username),
    CASE WHEN g % 2 = 0 THEN 'READ' ELSE 'READWRITE' END, 'loc-1', 'ds/' || g || '/*',
    's3://research-data/ds/' || g || '/*', s.id, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, {n}) g JOIN s3grant.users u ON u.id = g
  JOIN s3grant.subscriptions s ON s.user_id = g AND s.data_source_id = g;
""".format(n=NGRANTS)


def fix_moto_raw_query():
    from urllib.parse import urlparse, urlunparse

    from moto.core import authorization, responses

    setup = responses.BaseResponse.setup_class
    auth = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action

    def setup_class(self, request, full_url, headers, use_raw_body=False):
        setup(self, request, full_url, headers, use_raw_body)
        raw = getattr(request, "environ", {}).get("RAW_URI")
        self.raw_query_ = urlparse(raw).query if raw else None

    def authenticate(self, cls, resource="*"):
        raw = getattr(self, "raw_query_", None)
        if raw is None:
            return auth(self, cls, resource)
        uri = self.uri
        self.uri = urlunparse(urlparse(uri)._replace(query=raw))
        try:
            return auth(self, cls, resource)
        finally:
            self.uri = uri

    responses.BaseResponse.setup_class = setup_class
    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate


def export_policy(path, kms_arn=None):
    """The seed's permissions as s3grantctl policy export prints them."""
    stmts = [
        {"Sid": "PutAccessSummaryObjects", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": ["arn:aws:s3:::%s/%s/*" % (BUCKET, path)]},
        {"Sid": "ListAccessSummaryPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": ["arn:aws:s3:::%s" % BUCKET],
         "Condition": {"StringLike": {"s3:prefix": [path, path + "/*"]}}},
    ]
    if kms_arn:
        stmts.append({"Sid": "EncryptAccessSummaryWithKms", "Effect": "Allow",
                      "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [kms_arn]})
    return {"Version": "2012-10-17", "Statement": stmts}


def statements(doc):
    return {s["Sid"]: s for s in doc["Statement"]}


class ExportS3Moto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_CALLS)
        from moto.server import ThreadedMotoServer   # reads the count at import

        fix_moto_raw_query()

        cls.tmp = tempfile.mkdtemp(prefix="s3g-exs3-")
        cls.key = os.path.join(cls.tmp, "secrets-key")
        with open(cls.key, "w") as f:
            f.write("55" * 32 + "\n")
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        host, port = cls.server.get_host_and_port()
        cls.endpoint = "http://%s:%d" % (host, port)
        iam = cls.client("iam", "AKIAIOSFODNN7EXAMPLE", "setup")
        iam.create_user(UserName="admin")                                                   # 1
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({   # 2
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="admin")["AccessKey"]                            # 3
        cls.admin = (k["AccessKeyId"], k["SecretAccessKey"])
        # from here on every call is signed and checked
        cls.iam = cls.client("iam", *cls.admin)
        cls.s3 = cls.client("s3", *cls.admin)
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.kms_arn = cls.client("kms", *cls.admin).create_key(Description="export")["KeyMetadata"]["Arn"]
        cls.users = {}
        for name in ("exporter", "daemon", "putonly"):
            cls.iam.create_user(UserName=name)
            k = cls.iam.create_access_key(UserName=name)["AccessKey"]
            cls.users[name] = (k["AccessKeyId"], k["SecretAccessKey"])
        # exporter: the access-key export under "keys"
        cls.put_user_policy("exporter", export_policy("keys"))
        # putonly: PutObject but no ListBucket
        cls.put_user_policy("putonly", {"Version": "2012-10-17", "Statement": [
            export_policy("keys")["Statement"][0]]})

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    @classmethod
    def client(cls, service, key_id, secret, token=None):
        import boto3

        return boto3.client(service, endpoint_url=cls.endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                            aws_secret_access_key=secret, aws_session_token=token)

    @classmethod
    def put_user_policy(cls, user, doc):
        cls.iam.put_user_policy(UserName=user, PolicyName="export", PolicyDocument=json.dumps(doc))

    def setUp(self):
        self.db = fresh_db("exs3")
        self.env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=self.key, AWS_ENDPOINT_URL=self.endpoint)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            self.env.pop(k, None)
        self.env["AWS_CONFIG_FILE"] = self.env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.tmp, "none")
        self.env["AWS_EC2_METADATA_DISABLED"] = "true"
        r = self.ctl(["db", "migrate"])
        self.assertEqual(r.returncode, 0, r.stderr)
        psql(self.db, SEED_SQL)
        self.tenant = json.loads(self.ctl(["tenant"], json_out=True).stdout)["tenantId"]

    # ---- helpers -------------------------------------------------------------------

    def ctl(self, args, stdin=None, json_out=False, env=None):
        argv = [CTL, "--db", self.db] + (["--json"] if json_out else []) + args
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env or self.env, timeout=60)
        for _, secret in list(self.users.values()) + [self.admin]:
            self.assertNotIn(secret, r.stdout + r.stderr)
        return r

    def set_config(self, body, code=0, env=None):
        r = self.ctl(["export-config", "set", "-f", "-"], json.dumps(body), env=env)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        return r

    def keys_body(self, user="exporter", path="keys", **over):
        body = {"bucket": BUCKET, "region": "us-east-1", "accessKeyId": self.users[user][0],
                "secretAccessKey": self.users[user][1], "path": path}
        body.update(over)
        return body

    def daemon(self, time_of_day="23:59", own_keys=False):
        state = os.path.join(self.tmp, "state-" + self.db.split("dbname=")[-1].split()[0])
        os.makedirs(state, exist_ok=True)
        aws = "endpoint_url = %s\n" % self.endpoint
        if own_keys:
            aws += "access_key_id = %s\nsecret_access_key = %s\n" % self.users["daemon"]
        conf = ("[database]\nconninfo = %s\n[daemon]\nlog_level = debug\nshutdown_timeout = 10s\n"
                "[aws]\n%s[reconcile]\nqueue_poll_interval = 1h\n"
                "[export]\ntime_of_day = %s\ntimezone = UTC\nstate_dir = %s\n[secrets]\nkey_file = %s\n"
                % (self.db, aws, time_of_day, state, self.key))
        d = Daemon(conf, env=self.env)
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify("READY=1", timeout=20)
        return d

    def stop(self, d):
        d.signal(15)
        self.assertEqual(d.wait_exit(timeout=20), 0)
        for _, secret in list(self.users.values()) + [self.admin]:
            self.assertNotIn(secret, d.stderr)

    def last_export(self):
        r = self.ctl(["export", "status"], json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)[0]

    def db_rows(self, sql):
        out = psql(self.db, sql).strip()
        return sorted(tuple(line.split("|")) for line in out.splitlines() if line)

    def check_objects(self, prefix, sse_kms=None):
        """Every object is in S3, parses and matches the database; the manifest is right."""
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix.split("/")[0])
        keys = {o["Key"]: o["Size"] for o in listed.get("Contents", []) if o["Key"].startswith(prefix)}
        names = ["grants.ndjson.gz", "users.ndjson.gz", "data_sources.ndjson.gz", "integrations.ndjson.gz",
                 "manifest.json"]
        self.assertEqual(sorted(keys), sorted(prefix + n for n in names))
        manifest_obj = self.s3.get_object(Bucket=BUCKET, Key=prefix + "manifest.json")
        manifest = json.loads(manifest_obj["Body"].read())
        self.assertEqual(manifest["schemaVersion"], 1)
        self.assertEqual(manifest["tenantId"], self.tenant)
        self.assertEqual(manifest["prefix"], prefix)
        records = {}
        for f in manifest["files"]:
            obj = self.s3.get_object(Bucket=BUCKET, Key=f["key"], ChecksumMode="ENABLED")
            data = obj["Body"].read()
            self.assertEqual(len(data), f["bytes"], f["key"])
            self.assertEqual(keys[f["key"]], f["bytes"])
            self.assertEqual(hashlib.sha256(data).hexdigest(), f["sha256"], f["key"])
            self.assertEqual(base64.b64encode(hashlib.sha256(data).digest()).decode(), f["sha256Base64"])
            if obj.get("ChecksumSHA256"):   # the checksum S3 stored with the upload
                self.assertEqual(obj["ChecksumSHA256"], f["sha256Base64"])
            if sse_kms:
                self.assertEqual(obj.get("ServerSideEncryption"), "aws:kms", f["key"])
                self.assertIn(obj.get("SSEKMSKeyId", ""), (sse_kms, sse_kms.split("/")[-1]))
            lines = gzip.decompress(data).decode().splitlines()
            self.assertEqual(len(lines), f["rows"], f["key"])
            records[f["name"]] = [json.loads(line) for line in lines]
        self.assertEqual(manifest["files"][0]["rows"], NGRANTS)
        # row for row
        got = sorted((g["grantId"], g["grantArn"], g["permission"], g["granteeType"], g["principal"],
                      str(g["subscriptions"][0]["id"]), g["username"]) for g in records["grants.ndjson.gz"])
        want = self.db_rows("SELECT g.grant_id, g.grant_arn, g.permission, g.grantee_type, g.grantee_id,"
                            " s.id, u.username FROM s3grant.grants g JOIN s3grant.subscriptions s"
                            " ON s.id = g.subscription_id JOIN s3grant.users u ON u.id = s.user_id")
        self.assertEqual(got, want)
        got = sorted((str(u["id"]), u["username"], u["principal"] or "") for u in records["users.ndjson.gz"])
        self.assertEqual(got, self.db_rows("SELECT id, username, coalesce(principal, '') FROM s3grant.users"))
        got = sorted((str(x["id"]), str(x["integrationId"]), x["prefix"]) for x in records["data_sources.ndjson.gz"])
        self.assertEqual(got, self.db_rows("SELECT id, integration_id, prefix FROM s3grant.data_sources"))
        got = sorted((str(x["id"]), x["name"]) for x in records["integrations.ndjson.gz"])
        self.assertEqual(got, self.db_rows("SELECT id, name FROM s3grant.integrations"))
        return manifest

    # ---- tests -------------------------------------------------------------------

    def test_1_access_key_export_lands(self):
        self.set_config(self.keys_body())
        d = self.daemon()
        self.ctl(["export", "run"])
        d.wait_log(lambda l: 'msg="access summary exported"' in l and "manual=yes" in l, timeout=60)
        row = self.last_export()
        self.assertEqual(row["status"], "succeeded", row)
        self.assertEqual(row["row_count"], str(NGRANTS))
        self.check_objects(row["prefix"])
        self.assertTrue(row["prefix"].startswith("keys/access-summary/"), row)
        self.stop(d)

    def test_2_role_external_id_kms_export_lands(self):
        path = "role"
        daemon_arn = "arn:aws:iam::%s:user/daemon" % ACCOUNT
        role_arn = "arn:aws:iam::%s:role/access-summary-export" % ACCOUNT
        body = {"bucket": BUCKET, "region": "us-east-1", "roleArn": role_arn, "path": path,
                "kmsKeyId": self.kms_arn}
        # the policies s3grantctl prints for this config are the ones applied
        self.set_config(body, code=CTL_AWS_CHECK)    # nothing exists yet: the check says so
        r = self.ctl(["export-config", "set", "-f", "-", "--no-verify"], json.dumps(body))
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = json.loads(self.ctl(["policy", "export", "--principal", daemon_arn], json_out=True).stdout)
        self.assertEqual(statements(printed["identityPolicy"]), statements(export_policy(path, self.kms_arn)))
        trust = printed["trustPolicy"]
        self.assertEqual(statements(trust)["AssumedByS3grantd"]["Condition"]["StringEquals"]["sts:ExternalId"],
                         self.tenant)
        self.iam.create_role(RoleName="access-summary-export", AssumeRolePolicyDocument=json.dumps(trust))
        self.iam.put_role_policy(RoleName="access-summary-export", PolicyName="export",
                                 PolicyDocument=json.dumps(printed["identityPolicy"]))
        self.iam.put_user_policy(UserName="daemon", PolicyName="assume",
                                 PolicyDocument=json.dumps(printed["callerPolicy"]))
        # the check on save assumes the role with the tenant id, signed by the daemon's identity
        env = dict(self.env, AWS_ACCESS_KEY_ID=self.users["daemon"][0],
                   AWS_SECRET_ACCESS_KEY=self.users["daemon"][1])
        r = self.set_config(body, env=env)
        d = self.daemon(own_keys=True)
        self.ctl(["export", "run"])
        d.wait_log(lambda l: 'msg="access summary exported"' in l and "manual=yes" in l, timeout=60)
        row = self.last_export()
        self.assertEqual(row["status"], "succeeded", row)
        self.check_objects(row["prefix"], sse_kms=self.kms_arn)
        self.stop(d)

    def test_3_put_denied_is_recorded_and_retried(self):
        path = "denied"
        self.iam.create_user(UserName="flaky")
        k = self.iam.create_access_key(UserName="flaky")["AccessKey"]
        self.users["flaky"] = (k["AccessKeyId"], k["SecretAccessKey"])
        self.put_user_policy("flaky", export_policy(path))
        self.set_config(self.keys_body("flaky", path))
        # s3:PutObject removed: only the ListBucket statement left
        self.put_user_policy("flaky", {"Version": "2012-10-17", "Statement": [
            export_policy(path)["Statement"][1]]})
        # the day's slot (00:00 UTC) has passed: a catch-up export runs at start and fails
        d = self.daemon(time_of_day="00:00")
        line = d.wait_log('msg="access summary export failed"', timeout=60)
        self.assertIn("AccessDenied", line)
        self.assertIn("s3:PutObject on arn:aws:s3:::%s/%s/*" % (BUCKET, path), line)
        row = self.last_export()
        self.assertEqual((row["kind"], row["status"], row["attempts"]), ("schedule", "failed", "1"), row)
        self.assertIn("PutObject s3://%s/%s/access-summary/" % (BUCKET, path), row["error"])
        self.assertIn("the IAM user needs s3:PutObject", row["error"])
        self.assertIsNotNone(row["next_retry_at"])
        # policy restored; the retry time comes (moved to now instead of waiting 5 minutes)
        self.put_user_policy("flaky", export_policy(path))
        psql(self.db, "UPDATE s3grant.exports SET next_retry_at = now() WHERE id = %s;"
                      "NOTIFY s3grant_export;" % row["id"])
        d.wait_log(lambda l: 'msg="access summary exported"' in l and "attempt=2" in l and "manual=no" in l,
                   timeout=60)
        row = self.last_export()
        self.assertEqual((row["status"], row["attempts"]), ("succeeded", "2"), row)
        self.assertIsNone(row["error"])
        self.check_objects(row["prefix"])
        self.stop(d)

    def test_4_config_set_rejects(self):
        def bad(body, *needles, env=None):
            r = self.set_config(body, code=CTL_AWS_CHECK, env=env)
            for n in needles:
                self.assertIn(n, r.stderr)
            return r

        bad(self.keys_body(secretAccessKey="x" * 40), "GetCallerIdentity", "SignatureDoesNotMatch",
            "fix secretAccessKey")
        bad(self.keys_body(accessKeyId="AKIAXXXXXXXXXXXXXXXX"), "GetCallerIdentity", "fix accessKeyId")
        bad(self.keys_body("putonly"), "ListObjectsV2 s3://%s/keys/" % BUCKET, "AccessDenied",
            "the IAM user needs s3:ListBucket on arn:aws:s3:::%s for s3:prefix keys/*" % BUCKET)
        bad({"bucket": "no-such-bucket", "region": "us-east-1", "accessKeyId": self.admin[0],
             "secretAccessKey": self.admin[1], "path": "keys"}, "NoSuchBucket",
            "bucket no-such-bucket does not exist: fix bucket")
        role = "arn:aws:iam::%s:role/not-trusting" % ACCOUNT
        self.iam.create_role(RoleName="not-trusting", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": "arn:aws:iam::%s:root" % ACCOUNT},
                                                    "Condition": {"StringEquals": {"sts:ExternalId": "other"}}}]}))
        env = dict(self.env, AWS_ACCESS_KEY_ID=self.admin[0], AWS_SECRET_ACCESS_KEY=self.admin[1])
        bad({"bucket": BUCKET, "region": "us-east-1", "roleArn": role, "path": "keys"}, "AssumeRole " + role,
            "sts:ExternalId = %s" % self.tenant, env=env)
        # --json: the error object, exit code 6
        r = self.ctl(["export-config", "set", "-f", "-"], json.dumps(self.keys_body("putonly")), json_out=True)
        self.assertEqual(r.returncode, CTL_AWS_CHECK)
        self.assertIn("s3:ListBucket", json.loads(r.stdout)["message"])
        # nothing was saved by the failed attempts
        self.assertEqual(self.ctl(["export-config", "get"]).returncode, 4)
        # and a good one saves
        r = self.set_config(self.keys_body())
        self.assertIn("arn:aws:iam::%s:user/exporter" % ACCOUNT, r.stdout)


if __name__ == "__main__":
    unittest.main()
