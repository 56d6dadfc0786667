"""s3grantctl against a real Postgres: db migrate/status, the seed's JSON
round-trip, conflicts with the seed's messages, secrets at rest, entitlements.
S3G_NEEDS: pg
"""
import json
import os
import subprocess
import tempfile
import unittest

from pgtmp import fresh_db, psql

BUILD = os.environ.get("S3G_BUILD_DIR", "build")
CTL = os.path.join(BUILD, "ctl", "s3grantctl")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

SEED = {
    "type": "Native S3",
    "autoBootstrap": False,
    "config": {
        "name": "S3 integration",
        "awsAccountId": "123456789",
        "awsRegion": "us-east-1",
        "awsLocationRole": "arn:aws:iam::123456789:role/access-grants-instance-role",
        "awsLocationPath": "s3://",
        "authenticationType": "accessKey",
        "awsAccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "awsSecretAccessKey": SECRET,
    },
}


class CtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_db("ctl")
        cls.tmp = tempfile.mkdtemp(prefix="s3g-ctl-")
        cls.key = os.path.join(cls.tmp, "secrets-key")
        with open(cls.key, "w") as f:
            f.write("11" * 32 + "\n")
        cls.outputs = []
        r = cls.run_ctl(["db", "migrate"])
        assert r.returncode == 0, r.stderr

    @classmethod
    def run_ctl(cls, args, stdin=None, json_out=False):
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=cls.key)
        argv = [CTL, "--db", cls.db] + (["--json"] if json_out else []) + args
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
        cls.outputs.append(r.stdout + r.stderr)
        return r

    def ctl_json(self, args, stdin=None, code=0):
        r = self.run_ctl(args, stdin, json_out=True)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def create(self, cfg_over=None):
        doc = json.loads(json.dumps(SEED))
        doc["config"].update(cfg_over or {})
        return self.ctl_json(["integrations", "create", "-f", "-"], json.dumps(doc))

    def test_1_db_status_and_rerun(self):
        st = self.ctl_json(["db", "status"])
        self.assertTrue(st["current"])
        self.assertEqual(st["version"], st["latest"])
        again = self.ctl_json(["db", "migrate"])
        self.assertEqual(again["applied"], 0)
        t = self.ctl_json(["tenant"])
        self.assertRegex(t["tenantId"], r"^[0-9a-f-]{36}$")

    def test_2_seed_roundtrip_and_conflicts(self):
        out = self.create()
        self.assertEqual(out["status"], "creating")
        self.assertIn("validationResults", out)
        iid = out["id"]
        got = self.ctl_json(["integrations", "get", iid])
        self.assertEqual(got["type"], "Native S3")
        self.assertEqual(got["autoBootstrap"], False)
        want = dict(SEED["config"], awsSecretAccessKey="<REDACTED>")
        self.assertEqual(got["config"], want)
        lst = self.ctl_json(["integrations", "list"])
        self.assertEqual([i["id"] for i in lst], [iid])
        # secret is ciphertext in the row
        raw = psql(self.db, "SELECT encode(secret_access_key, 'hex') FROM s3grant.integrations WHERE id = %d" % int(iid)).strip()
        self.assertTrue(raw.startswith("01"))
        self.assertNotIn(SECRET.encode().hex(), raw)
        self.assertNotIn(SECRET, psql(self.db, "SELECT secret_access_key::text FROM s3grant.integrations"))
        # same path: the seed's conflict
        doc = json.loads(json.dumps(SEED))
        doc["config"]["name"] = "other"
        err = self.ctl_json(["integrations", "create", "-f", "-"], json.dumps(doc), code=5)
        self.assertEqual(err, {"statusCode": 409, "error": "Conflict",
                               "message": "Access Grants location already exists on provided path."})
        # same name elsewhere
        r = self.run_ctl(["integrations", "create", "-f", "-"],
                         json.dumps(dict(SEED, config=dict(SEED["config"], awsLocationPath="s3://another"))))
        self.assertEqual(r.returncode, 5)
        self.assertIn("name:", r.stderr)
        # update in state creating: the seed's conflict message
        upd = json.loads(json.dumps(SEED))
        upd["config"]["name"] = "renamed"
        err = self.ctl_json(["integrations", "update", iid, "-f", "-"], json.dumps(upd), code=5)
        self.assertEqual(err["message"], "Unable to edit integration with ID %s in current state creating." % iid)
        psql(self.db, "UPDATE s3grant.integrations SET status = 'enabled'")
        upd["config"]["awsRegion"] = "us-west-2"
        err = self.ctl_json(["integrations", "update", iid, "-f", "-"], json.dumps(upd), code=5)
        self.assertIn("awsRegion must match", err["message"])
        upd["config"]["awsRegion"] = "us-east-1"
        out = self.ctl_json(["integrations", "update", iid, "-f", "-"], json.dumps(upd))
        self.assertEqual(out["status"], "editing")
        err = self.ctl_json(["integrations", "update", iid, "-f", "-"], json.dumps(upd), code=5)
        self.assertEqual(err["message"], "Unable to edit integration with ID %s in current state editing." % iid)
        self.assertEqual(self.ctl_json(["integrations", "get", iid])["config"]["name"], "renamed")
        psql(self.db, "UPDATE s3grant.integrations SET status = 'enabled'")
        out = self.ctl_json(["integrations", "delete", iid])
        self.assertEqual(out["status"], "deleting")
        self.ctl_json(["integrations", "delete", iid], code=5)
        self.ctl_json(["integrations", "get", "999"], code=4)
        self.ctl_json(["integrations", "create", "-f", "-"], "{not json", code=3)

    def test_3_entitlements(self):
        out = self.create({"name": "research", "awsLocationPath": "s3://research-data",
                           "authenticationType": "auto", "awsAccessKeyId": None, "awsSecretAccessKey": None})
        iid = out["id"]
        ds = self.ctl_json(["datasources", "add", "--integration", iid, "--prefix", "/demographics"])
        self.assertEqual(ds[0]["path"], "s3://research-data/demographics")
        r = self.run_ctl(["datasources", "add", "--integration", iid, "--prefix", "a/../b"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("prefix:", r.stderr)
        self.ctl_json(["users", "set-principal", "alice", "arn:aws:iam::123456789012:role/analyst"])
        r = self.run_ctl(["users", "set-principal", "bob", "arn:aws:iam::123456789012:role/analyst"])
        self.assertEqual(r.returncode, 5)
        self.assertIn("principal:", r.stderr)
        r = self.run_ctl(["users", "set-principal", "bob", "not-an-arn"])
        self.assertEqual(r.returncode, 3)
        sub = self.ctl_json(["subscriptions", "add", "--user", "alice", "--data-source", ds[0]["id"],
                             "--access", "read"])
        self.assertEqual(sub[0]["access"], "read")
        r = self.run_ctl(["subscriptions", "add", "--user", "alice", "--data-source", ds[0]["id"],
                          "--access", "admin"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("access:", r.stderr)
        self.ctl_json(["subscriptions", "add", "--user", "nobody", "--data-source", ds[0]["id"],
                       "--access", "read"], code=4)
        self.assertEqual(len(self.ctl_json(["subscriptions", "list", "--user", "alice"])), 1)
        self.ctl_json(["subscriptions", "remove", "--user", "alice", "--data-source", ds[0]["id"]])
        self.assertEqual(self.ctl_json(["subscriptions", "list"]), [])
        self.assertEqual(self.run_ctl(["bogus"]).returncode, 2)
        self.assertEqual(self.run_ctl(["--help"]).returncode, 0)

    def test_9_secret_never_output(self):
        for o in self.outputs:
            self.assertNotIn(SECRET, o)


if __name__ == "__main__":
    unittest.main()
