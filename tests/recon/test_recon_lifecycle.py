"""An integration's life with the real daemon, a real Postgres and the S3
Control fake (creating → enabled and a plain delete are in test_recon_daemon):

* edit (`s3grantctl integrations update`) → editing → the validation tests
  run again → enabled with the new name; the grants stay;
* an edit whose credentials fail → editError with the failed test in
  validation_results, the previous name and key restored (rolled back), the
  grants untouched; a good edit from editError → enabled again;
* periodic re-validation ([reconcile] revalidate_interval) failing because the
  credentials stopped working → recurringValidationError with the results;
  once they work again the next re-validation → enabled;
* deleting an integration with its own location (s3://bucket) and many
  grants: every grant deleted, then the location (retried while AWS still
  reports it non-empty), → deleted; another location's grant untouched;
* no Access Grants instance → createError, no location created.

S3G_NEEDS: pg
S3G_TIMEOUT: 420
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCESS_KEY, ACCOUNT, ROLE, SECRET_KEY, Env, FakeTestCase, wait_until  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon_harness import Daemon  # noqa: E402

BAD_KEY = "AKIDBROKENEXAMPLE000"


def doc(name, key=ACCESS_KEY, secret=SECRET_KEY, path="s3://"):
    return json.dumps({"type": "Native S3",
                       "config": {"name": name, "awsAccountId": ACCOUNT, "awsRegion": "us-east-1",
                                  "awsLocationRole": ROLE, "awsLocationPath": path,
                                  "authenticationType": "accessKey", "awsAccessKeyId": key,
                                  "awsSecretAccessKey": secret}})


class ReconLifecycle(FakeTestCase):
    def setUp(self):
        super().setUp()
        self.e = Env(self.fake, prefix="rl")
        self.addCleanup(self.e.close)

    def row(self, iid, cols):
        return self.e.sql("SELECT concat_ws('|', %s) FROM s3grant.integrations WHERE id = %d" % (cols, iid)).strip()

    def results(self, iid):
        return json.loads(self.e.sql("SELECT validation_results FROM s3grant.integrations WHERE id = %d" % iid))

    def failed_tests(self, iid):
        return [t for t in self.results(iid)["validationTests"] if t["status"] == "failed"]

    def seed(self, iid, n, bucket="bucket-l"):
        e = self.e
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'l' || i, 'arn:aws:iam::%s:user/l' || i"
              " FROM generate_series(0, %d) i ON CONFLICT DO NOTHING" % (ACCOUNT, n - 1))
        ds = e.datasource(iid, "%s/data" % bucket)
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT id, %d, 'read'"
              " FROM s3grant.users WHERE username LIKE 'l%%'" % ds)

    def grant_ids(self):
        return sorted(g["id"] for g in self.fake.grants())

    def test_edit_then_failed_edit_rolls_back(self):
        e = self.e
        iid = e.create_integration(name="life")
        self.seed(iid, 5)
        e.daemon()
        e.wait_status(iid, "enabled")
        wait_until(lambda: len(self.fake.grants()) == 5, 30, "5 grants")
        before = self.grant_ids()
        first_validated = self.row(iid, "validated_at")

        # a good edit: re-validated, enabled, the new name kept
        self.fake.clear_log()
        out = e.ctl("integrations", "update", str(iid), "-f", "-", stdin=doc("life-renamed"))
        self.assertIn("editing", out)          # the daemon may be done already: the row is not checked
        e.wait_status(iid, "enabled")
        self.assertEqual(self.row(iid, "name, access_key_id, previous_config IS NULL"),
                         "life-renamed|%s|t" % ACCESS_KEY)
        self.assertEqual(self.results(iid)["status"], "passed")
        self.assertNotEqual(self.row(iid, "validated_at"), first_validated)
        # the tests called AWS again (instance, locations), and changed nothing
        ops = [x["op"] for x in self.fake.log()]
        self.assertNotIn("CreateAccessGrant", ops)
        self.assertNotIn("DeleteAccessGrant", ops)
        self.assertEqual(self.grant_ids(), before)

        # a failing edit: a key AWS does not know → editError, rolled back
        e.ctl("integrations", "update", str(iid), "-f", "-", stdin=doc("life-broken", key=BAD_KEY, secret="x" * 40))
        e.wait_status(iid, "editError")
        self.assertEqual(self.row(iid, "name, access_key_id, previous_config IS NULL"),
                         "life-renamed|%s|t" % ACCESS_KEY)
        res = self.results(iid)
        self.assertEqual(res["status"], "failed")
        failed = self.failed_tests(iid)
        self.assertTrue(failed, res)
        self.assertIn("InvalidAccessKeyId", json.dumps(failed))
        self.assertEqual(self.grant_ids(), before)
        # and the secret came back too: a good edit (name only) passes again
        e.ctl("integrations", "update", str(iid), "-f", "-", stdin=doc("life-3"))
        e.wait_status(iid, "enabled")
        self.assertEqual(self.row(iid, "name"), "life-3")
        # it reconciles with the restored credentials
        e.user("late", "arn:aws:iam::%s:user/late" % ACCOUNT)
        e.subscribe("late", int(e.sql("SELECT id FROM s3grant.data_sources WHERE integration_id = %d" % iid)))
        wait_until(lambda: len(self.fake.grants()) == 6, 30, "a 6th grant")

    def test_recurring_validation_error_and_back(self):
        e = self.e
        iid = e.create_integration(name="recur")
        self.seed(iid, 3)
        # re-validate every minute (the shortest); a resync each minute runs the pass that does it
        conf = e.conf("revalidate_interval = 1m\n").replace("resync_interval = 1h", "resync_interval = 1m")
        d = Daemon(conf, env=e.env)
        e.daemons.append(d)
        d.start()
        d.wait_notify("READY=1", timeout=30)
        e.wait_status(iid, "enabled")
        wait_until(lambda: len(self.fake.grants()) == 3, 30, "3 grants")
        before = self.grant_ids()
        # the integration's key stops working (rotated in IAM, say)
        self.fake.add_credentials(ACCESS_KEY, "rotated" + SECRET_KEY[7:], replace=True)
        e.wait_status(iid, "recurringValidationError", timeout=150)
        res = self.results(iid)
        self.assertEqual(res["status"], "failed")
        self.assertIn("SignatureDoesNotMatch", json.dumps(self.failed_tests(iid)))
        d.wait_log(lambda l: "integration recurringValidationError" in l and "level=warning" in l)
        self.assertEqual(self.grant_ids(), before)
        # it works again: the next periodic re-validation puts it back
        self.fake.add_credentials(ACCESS_KEY, SECRET_KEY, replace=True)
        e.wait_status(iid, "enabled", timeout=150)
        self.assertEqual(self.results(iid)["status"], "passed")
        self.assertEqual(self.grant_ids(), before)

    def test_delete_grants_then_location(self):
        e = self.e
        other = self.fake.add_grant("arn:aws:iam::%s:user/someone" % ACCOUNT, "READ",
                                    location_scope="s3://other-bucket", sub_prefix="x*")
        iid = e.create_integration(name="del", path="s3://bucket-del")
        self.seed(iid, 30, bucket="bucket-del")
        e.daemon()
        e.wait_status(iid, "enabled")
        loc = self.row(iid, "location_id")
        self.assertNotEqual(loc, "")
        self.assertIn(loc, [l["id"] for l in self.fake.state()["locations"]])
        wait_until(lambda: len([g for g in self.fake.grants() if g["location_id"] == loc]) == 30, 30, "30 grants")
        # AWS keeps deleted grants visible (and the location non-empty) for a while
        self.fake.config(delete_lag_ms=1500)
        self.fake.clear_log()
        e.ctl("integrations", "delete", str(iid))
        e.wait_status(iid, "deleted", timeout=60)
        log = [x for x in self.fake.log() if x["op"] in ("DeleteAccessGrant", "DeleteAccessGrantsLocation")]
        deletes = [i for i, x in enumerate(log) if x["op"] == "DeleteAccessGrant" and x["status"] == 200]
        loc_ok = [i for i, x in enumerate(log) if x["op"] == "DeleteAccessGrantsLocation" and x["status"] == 200]
        self.assertEqual(len(deletes), 30, log)
        self.assertEqual(len(loc_ok), 1, log)
        self.assertLess(max(deletes), loc_ok[0], "the location went before its grants")
        not_empty = [x for x in log if x.get("code") == "AccessGrantsLocationNotEmptyError"]
        self.assertTrue(not_empty, "the delete lag was not exercised: %r" % log)
        self.assertNotIn(loc, [l["id"] for l in self.fake.state()["locations"]])
        self.assertEqual([g["id"] for g in self.fake.grants()], [other["id"]])
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.grants WHERE integration_id = %d" % iid).strip(), "0")
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.audit_log WHERE operation = 'delete'").strip(), "30")

    def test_no_instance_create_error(self):
        e = self.e
        self.fake.reset()                      # no Access Grants instance in the account
        iid = e.create_integration(name="noinst")
        d = e.daemon()
        e.wait_status(iid, "createError")
        res = self.results(iid)
        self.assertEqual(res["status"], "failed")
        self.assertEqual(len(res["validationTests"]), 7)
        names = [t["name"] for t in self.failed_tests(iid)]
        self.assertIn("An S3 Access Grants instance exists in the account and region", names)
        self.assertEqual(self.fake.state()["locations"], [])
        self.assertNotIn("CreateAccessGrantsLocation", [x["op"] for x in self.fake.log()])
        d.wait_log(lambda l: "integration createError" in l)


if __name__ == "__main__":
    unittest.main()
