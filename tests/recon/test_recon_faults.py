"""Faults from the S3 Control fake: 10 % throttling plus 10 % 5xx → the
daemon converges; "Invalid Grantee" for new principals during a window →
retried, then converges; a principal refused for longer than the
propagation window → an error on that subscription (visible in the database
and `s3grantctl status`) while every other subscription converges.

S3G_NEEDS: pg
S3G_TIMEOUT: 300
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, FakeTestCase, wait_until  # noqa: E402


def seed(e, iid, users, sources, access="read"):
    e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'u' || i, 'arn:aws:iam::%s:user/u' || i"
          " FROM generate_series(0, %d) i" % (ACCOUNT, users - 1))
    e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-a/p' || i"
          " FROM generate_series(0, %d) i" % (iid, sources - 1))
    e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, '%s'"
          " FROM s3grant.users u CROSS JOIN s3grant.data_sources d" % access)


class ReconFaults(FakeTestCase):
    def env(self, extra=""):
        e = Env(self.fake, conf_extra=extra)
        self.addCleanup(e.close)
        return e

    def ngrants(self):
        return len(self.fake.grants())

    def test_throttling_and_5xx_converge(self):
        e = self.env()
        iid = e.create_integration()
        seed(e, iid, 20, 20)
        self.fake.config(throttle_rate=0.1, error_rate=0.1, seed=7)
        e.daemon()
        wait_until(lambda: self.ngrants() == 400, 120, "400 grants")
        wait_until(lambda: e.sql("SELECT count(*) FROM s3grant.subscriptions WHERE status = 'active'").strip()
                   == "400", 60, "400 active subscriptions")
        st = self.fake.stats()
        self.assertGreater(json.dumps(st).count("SlowDown") + json.dumps(st).count("InternalError"), 0)
        keys = [(g["grantee"], g["permission"], g["scope"]) for g in self.fake.grants()]
        self.assertEqual(len(keys), len(set(keys)))
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.grants").strip(), "400")

    def test_invalid_grantee_window_then_converges(self):
        e = self.env()
        iid = e.create_integration()
        seed(e, iid, 3, 2)
        self.fake.config(invalid_grantee_seconds=2)
        d = e.daemon()
        wait_until(lambda: self.ngrants() == 6, 60, "6 grants")
        codes = [x.get("code") for x in self.fake.log() if x["op"] == "CreateAccessGrant"]
        self.assertIn("InvalidRequest", codes)
        self.assertNotIn("grant change refused", d.stderr)

    def test_terminal_error_on_one_subscription(self):
        e = self.env("propagation_window = 2s\n")
        iid = e.create_integration()
        seed(e, iid, 3, 2)
        bad = "arn:aws:iam::%s:user/u1" % ACCOUNT
        self.fake.config(invalid_grantee_seconds=3600, invalid_grantee_principals=[bad])
        e.daemon()
        wait_until(lambda: self.ngrants() == 4, 60, "4 grants")
        rows = wait_until(lambda: e.sql(
            "SELECT s.status, s.error FROM s3grant.subscriptions s JOIN s3grant.users u ON u.id = s.user_id"
            " WHERE u.username = 'u1' AND s.status = 'error'").strip().splitlines(), 60, "error status")
        self.assertEqual(len(rows), 2, rows)
        self.assertIn("Invalid Grantee", rows[0])
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.subscriptions WHERE status = 'active'").strip(), "4")
        out = e.ctl("status", "--integration", str(iid), code=None)
        self.assertIn("Invalid Grantee", out)


if __name__ == "__main__":
    unittest.main()
