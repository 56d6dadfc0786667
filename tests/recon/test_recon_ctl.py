"""s3grantctl status and plan on a small fixture: text and JSON, make-before-break
pairs, rejections, quota refusals and warnings, the writer holding the lock.
S3G_NEEDS: pg
"""
import json
import os
import subprocess
import unittest

from pgtmp import fresh_db, psql

BUILD = os.environ.get("S3G_BUILD_DIR", "build")
CTL = os.path.join(BUILD, "ctl", "s3grantctl")
LOCK_CLASS = 0x53334701

FIXTURE = """
INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path,
  status, location_id) VALUES
 ('one', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://research-data', 'enabled', 'loc-1'),
 ('new', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://other', 'creating', NULL),
 ('gone', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://gone', 'deleting', 'loc-3');
INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'a'), (1, 'b/c'), (3, 'z');
INSERT INTO s3grant.users (username, principal) VALUES
 ('alice', 'arn:aws:iam::123456789012:user/alice'), ('bob', '94482488-3041-7026-18f3-be45837cd0e4'),
 ('carol', NULL), ('bad name', NULL);
INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES
 (1, 1, 'write'), (2, 2, 'write'), (3, 1, 'read'), (4, 1, 'read'), (1, 3, 'read');
INSERT INTO s3grant.grants (grant_id, integration_id, grant_arn, grantee_type, grantee_id, permission,
  location_id, sub_prefix, grant_scope, subscription_ids) VALUES
 ('g1', 1, 'arn:g1', 'IAM', 'arn:aws:iam::123456789012:user/alice', 'READ', 'loc-1', 'a*', 's3://research-data/a*', '{1}'),
 ('g2', 1, 'arn:g2', 'IAM', 'arn:aws:iam::123456789012:user/mallory', 'READ', 'loc-1', 'x*', 's3://research-data/x*', NULL),
 ('g3', 1, 'arn:g3', 'IAM', 'arn:aws:iam::123456789012:user/carol', 'READ', 'loc-1', 'a*', 's3://research-data/a*', '{3}'),
 ('g9', 3, 'arn:g9', 'IAM', 'arn:aws:iam::123456789012:user/alice', 'READ', 'loc-3', 'z*', 's3://gone/z*', '{5}');
UPDATE s3grant.subscriptions SET status = 'rejected', error = 'principal: bad IAM name', error_at = now() WHERE id = 4;
UPDATE s3grant.subscriptions SET status = 'error', error = 'AccessDenied: not allowed', error_at = now() WHERE id = 2;
INSERT INTO s3grant.integration_health (integration_id, desired_count, actual_count, instance_grants,
  last_resync_at, last_error, last_error_at)
 VALUES (1, 3, 3, 4, '2024-05-01T10:00:00Z', 'ListAccessGrants: throttled', '2024-05-01T10:00:01Z');
"""


class ReconCtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_db("recon_ctl")
        r = subprocess.run([CTL, "-d", cls.db, "db", "migrate"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        psql(cls.db, FIXTURE)

    def ctl(self, *args, code=0):
        r = subprocess.run([CTL, "-d", self.db] + list(args), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        return r.stdout

    def set_quota(self, n):
        psql(self.db, "UPDATE s3grant.integration_health SET instance_grants = %d WHERE integration_id = 1" % n)

    def test_plan_text(self):
        self.set_quota(4)
        out = self.ctl("plan", "--integration", "1")
        lines = [l.rstrip() for l in out.splitlines()]
        self.assertEqual(lines[0], 'integration 1 "one" (s3://research-data, location loc-1): enabled')
        body = [" ".join(l.split()) for l in lines[1:] if l]
        self.assertEqual(body, [
            "+ create READWRITE 94482488-3041-7026-18f3-be45837cd0e4 s3://research-data/b/c* (subscription 2)",
            "~ replace READWRITE arn:aws:iam::123456789012:user/alice s3://research-data/a* "
            "(create first, then delete:)",
            "was READ arn:aws:iam::123456789012:user/alice s3://research-data/a* (grant g1)",
            "- delete READ arn:aws:iam::123456789012:user/mallory s3://research-data/x* (grant g2: not desired)",
            "! reject subscription 4 (bad name → a): principal: unset, and the user name is not a valid IAM "
            "user name",
            "Plan: 1 to create, 1 to replace, 1 to delete; 1 rejected, 0 refused by quota (3 desired, 3 in AWS, "
            "1 kept; quota 4/100000 ok).",
        ])
        # the plan changes nothing
        self.assertEqual(psql(self.db, "SELECT count(*) FROM s3grant.grants").strip(), "4")
        self.assertEqual(psql(self.db, "SELECT count(*) FROM s3grant.grant_intents").strip(), "0")

    def test_plan_json(self):
        self.set_quota(4)
        doc = json.loads(self.ctl("plan", "--json"))
        by_id = {i["integrationId"]: i for i in doc["integrations"]}
        self.assertEqual(sorted(by_id), [1, 2, 3])
        one = by_id[1]
        self.assertEqual(one["summary"]["create"], 1)
        self.assertEqual(one["summary"]["replace"], 1)
        self.assertEqual(one["summary"]["delete"], 1)
        self.assertEqual(one["summary"]["rejected"], 1)
        self.assertEqual(one["summary"]["keep"], 1)
        self.assertEqual(one["summary"]["quotaLevel"], "ok")
        self.assertEqual(one["create"][0]["granteeType"], "DIRECTORY_USER")
        self.assertEqual(one["create"][0]["subscriptions"], [2])
        rep = one["replace"][0]
        self.assertEqual(rep["create"]["permission"], "READWRITE")
        self.assertEqual([d["grantId"] for d in rep["thenDelete"]], ["g1"])
        self.assertEqual(one["delete"][0]["grantId"], "g2")
        self.assertEqual(one["delete"][0]["reason"], "unwanted")
        self.assertEqual(one["rejected"][0]["subscriptionId"], 4)
        self.assertEqual(one["rejected"][0]["user"], "bad name")
        self.assertIn("principal", one["rejected"][0]["reason"])
        # creating: nothing to plan before the location exists
        self.assertIn("not registered", by_id[2]["note"])
        # deleting: every grant goes, whatever is subscribed
        self.assertEqual([d["grantId"] for d in by_id[3]["delete"]], ["g9"])
        self.assertEqual(by_id[3]["create"], [])

    def test_plan_quota(self):
        # room for one more grant: the first create (the replacement) goes, bob's is refused
        self.set_quota(99999)
        doc = json.loads(self.ctl("plan", "--json", "--integration", "1"))
        one = doc["integrations"][0]
        self.assertEqual(one["summary"]["replace"], 1)
        self.assertEqual(one["summary"]["quotaRefused"], 1)
        self.assertEqual(one["quotaRefused"][0]["grantee"], "94482488-3041-7026-18f3-be45837cd0e4")
        self.assertEqual(one["summary"]["quotaLevel"], "warn")
        out = self.ctl("plan", "--integration", "1")
        self.assertIn("! quota", out)
        self.assertIn("(refused: instance grant quota)", out)
        # full: the replacement is refused too and the old grant is kept (no access gap)
        self.set_quota(100000)
        one = json.loads(self.ctl("plan", "--json", "--integration", "1"))["integrations"][0]
        self.assertEqual(one["summary"]["quotaRefused"], 2)
        self.assertEqual([b["grantId"] for b in one["blocked"]], ["g1"])
        self.assertEqual(one["summary"]["quotaLevel"], "full")
        self.set_quota(4)

    def test_status_json(self):
        self.set_quota(91000)
        doc = json.loads(self.ctl("status", "--json"))
        by_id = {i["id"]: i for i in doc["integrations"]}
        one = by_id[1]
        self.assertEqual(one["status"], "enabled")
        self.assertEqual(one["grants"], {"desired": 3, "actual": 3})
        self.assertEqual(one["lastResyncAt"], "2024-05-01T10:00:00Z")
        self.assertEqual(one["lastError"], "ListAccessGrants: throttled")
        self.assertEqual(one["quota"]["used"], 91000)
        self.assertEqual(one["quota"]["limit"], 100000)
        self.assertEqual(one["quota"]["level"], "warn")
        self.assertEqual(one["quota"]["percent"], 91.0)
        self.assertEqual(one["quota"]["source"], "aws")
        self.assertEqual(one["subscriptions"], {"total": 4, "rejected": 1, "error": 1, "quota": 0})
        errs = {e["subscriptionId"]: e for e in one["subscriptionErrors"]}
        self.assertEqual(sorted(errs), [2, 4])
        self.assertEqual(errs[2]["status"], "error")
        self.assertEqual(errs[2]["error"], "AccessDenied: not allowed")
        self.assertEqual(errs[4]["user"], "bad name")
        self.assertIsNone(one["writer"])
        self.assertGreaterEqual(one["pending"]["queued"], 1)   # the fixture's own changes are queued
        # no health row yet: desired unknown, quota counted from the grants table
        self.assertIsNone(by_id[2]["grants"]["desired"])
        self.assertEqual(by_id[2]["quota"]["source"], "database")
        self.assertEqual(by_id[2]["quota"]["used"], 4)
        self.set_quota(4)

    def test_status_text_and_writer(self):
        self.set_quota(95000)
        holder = subprocess.Popen(["psql", "-X", "-q", "-At", "-d", self.db + " application_name=s3grantd-test"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("SELECT pg_advisory_lock(%d, 1);\n\\echo locked\n" % LOCK_CLASS)
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "")       # pg_advisory_lock's void result
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            out = self.ctl("status", "--integration", "1")
            doc = json.loads(self.ctl("status", "--json", "--integration", "1"))
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        self.assertIn('integration 1 "one" (s3://research-data, account 123456789012, us-east-1): enabled', out)
        self.assertIn("grants         desired 3, actual 3", out)
        self.assertIn("last resync    2024-05-01T10:00:00Z", out)
        self.assertIn("95000 / 100000 grants in the instance (95.0 %) — WARNING: 90 % or more used", out)
        self.assertIn("(s3grantd-test)", out)
        self.assertIn("subscription 2 (bob → b/c, write): error: AccessDenied: not allowed", out)
        self.assertIn("subscription 4 (bad name → a, read): rejected: principal: bad IAM name", out)
        self.assertEqual(doc["integrations"][0]["writer"]["applicationName"], "s3grantd-test")
        self.set_quota(4)

    def test_not_found_and_usage(self):
        self.ctl("status", "--integration", "99", code=4)
        self.ctl("plan", "--integration", "99", code=4)
        self.ctl("plan", "--integration", "x", code=3)
        self.ctl("status", "extra", code=2)


if __name__ == "__main__":
    unittest.main()
