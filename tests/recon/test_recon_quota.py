"""The grant quota of an Access Grants instance (100,000 in AWS; [reconcile]
grant_quota keeps it small here), with the real daemon, a real Postgres and the
S3 Control fake:

* below 90 % of the quota: no warning; from 90 %: a warning with used/limit;
* creates beyond the quota are refused before any call: the affected
  subscriptions get status 'quota' with a clear error, the fake holds exactly
  the quota (grants in another location of the same instance count too), and
  `s3grantctl status` shows it;
* the fake's own AccessGrantsQuotaExceededError (AWS's quota reached before
  ours) marks exactly the refused subscriptions 'quota', leaves no intent,
  the rest converge;
* deletes that free room get the refused subscriptions their grants without
  another change or a resync.

S3G_NEEDS: pg
S3G_TIMEOUT: 240
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, FakeTestCase, wait_until  # noqa: E402

QUOTA_WARNING = "near or at its grant quota"


def principal(i):
    return "arn:aws:iam::%s:user/q%d" % (ACCOUNT, i)


class ReconQuota(FakeTestCase):
    def env(self, extra=""):
        e = Env(self.fake, prefix="rq", conf_extra=extra)
        self.addCleanup(e.close)
        return e

    def seed(self, e, iid, users, sources):
        """users q0..q(users-1) and sources bucket-q/p0..; no subscriptions yet."""
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'q' || i, 'arn:aws:iam::%s:user/q' || i"
              " FROM generate_series(0, %d) i" % (ACCOUNT, users - 1))
        e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-q/p' || i"
              " FROM generate_series(0, %d) i" % (iid, sources - 1))

    def subscribe_users(self, e, lo, hi):
        """Every data source for users q<lo>..q<hi-1>, in one commit."""
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, 'read'"
              " FROM s3grant.users u CROSS JOIN s3grant.data_sources d"
              " WHERE substr(u.username, 2)::int >= %d AND substr(u.username, 2)::int < %d" % (lo, hi))

    def counts(self, e):
        rows = e.sql("SELECT status, count(*) FROM s3grant.subscriptions GROUP BY 1 ORDER BY 1").split()
        return dict((r.split("|")[0], int(r.split("|")[1])) for r in rows)

    def wait_counts(self, e, want, timeout=60):
        return wait_until(lambda: self.counts(e) == want, timeout, "subscription statuses %r (have %r)"
                          % (want, self.counts(e)))

    def quota_lines(self, d):
        return [l for l in d.stderr.splitlines() if QUOTA_WARNING in l]

    def test_configured_quota_warns_then_refuses(self):
        # 5 grants in another location of the same instance: they use quota too.
        for i in range(5):
            self.fake.add_grant(principal(100 + i), "READ", location_scope="s3://other-bucket", sub_prefix="x%d*" % i)
        e = self.env("grant_quota = 100\n")
        iid = e.create_integration()
        self.seed(e, iid, 12, 10)
        self.subscribe_users(e, 0, 8)           # 80 + 5 = 85 %: no warning
        d = e.daemon()
        e.wait_status(iid, "enabled")
        self.wait_counts(e, {"active": 80})
        self.assertEqual(len(self.fake.grants()), 85)
        self.assertEqual(self.quota_lines(d), [])

        self.subscribe_users(e, 8, 9)           # 95 %: warned, nothing refused
        self.wait_counts(e, {"active": 90})
        line = d.wait_log(QUOTA_WARNING)
        self.assertIn("level=warning", line)
        self.assertIn("limit=100", line)
        self.assertIn("refused=0", line)
        self.assertEqual(len(self.fake.grants()), 95)

        # 10 more: room for 5; the other 5 are refused without a call.
        self.fake.clear_log()
        self.subscribe_users(e, 9, 10)
        self.wait_counts(e, {"active": 95, "quota": 5})
        self.assertEqual(len(self.fake.grants()), 100)
        creates = [x for x in self.fake.log() if x["op"] == "CreateAccessGrant"]
        self.assertEqual(len(creates), 5, creates)
        self.assertTrue(all(x["status"] == 200 for x in creates), creates)
        d.wait_log(lambda l: QUOTA_WARNING in l and "refused=5" in l)
        errors = e.sql("SELECT DISTINCT s.error FROM s3grant.subscriptions s WHERE s.status = 'quota'").strip()
        self.assertIn("quota", errors.lower())
        who = e.sql("SELECT DISTINCT u.username FROM s3grant.subscriptions s JOIN s3grant.users u"
                    " ON u.id = s.user_id WHERE s.status = 'quota'").split()
        self.assertEqual(who, ["q9"])
        out = e.ctl("status", "--integration", str(iid), code=None)
        self.assertIn("quota", out.lower())
        self.assertIn("100", out)

    def test_aws_quota_error(self):
        # AWS's own quota is reached first (the daemon's is the default 100,000).
        self.fake.config(grant_quota=50)
        e = self.env()
        iid = e.create_integration()
        self.seed(e, iid, 6, 10)
        self.subscribe_users(e, 0, 6)           # 60 wanted, 50 fit
        d = e.daemon()
        e.wait_status(iid, "enabled")
        self.wait_counts(e, {"active": 50, "quota": 10})
        self.assertEqual(len(self.fake.grants()), 50)
        refused = [x for x in self.fake.log() if x["op"] == "CreateAccessGrant" and x["status"] != 200]
        self.assertGreaterEqual(len(refused), 10)
        self.assertEqual(set(x["code"] for x in refused), {"AccessGrantsQuotaExceededError"}, refused)
        errors = e.sql("SELECT DISTINCT error FROM s3grant.subscriptions WHERE status = 'quota'").strip()
        self.assertIn("AccessGrantsQuotaExceeded", errors)
        # A refused create made no grant: its intent goes, as for a terminal
        # error (one left behind would be compared with every kept grant on
        # each pass, for good).
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.grant_intents").strip(), "0",
                         "intents left for creates refused by AWS's quota")
        # not a terminal error: no subscription in 'error'
        self.assertNotIn("grant change refused by AWS", d.stderr)
        keys = [(g["grantee"], g["permission"], g["scope"]) for g in self.fake.grants()]
        self.assertEqual(len(keys), len(set(keys)))
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.grants").strip(), "50")

    def test_refused_created_when_room_frees(self):
        """Deletes free quota; the subscriptions refused for quota must then get
        their grants without waiting for the next resync (default 6 h): the
        pass that deletes planned its creates with the use from before the
        deletes, so the daemon plans again once they freed room."""
        e = self.env("grant_quota = 20\n")
        iid = e.create_integration()
        self.seed(e, iid, 5, 5)
        self.subscribe_users(e, 0, 4)           # 20: the quota, all fit
        e.daemon()
        e.wait_status(iid, "enabled")
        self.wait_counts(e, {"active": 20})
        self.subscribe_users(e, 4, 5)           # 5 more: refused
        self.wait_counts(e, {"active": 20, "quota": 5})
        self.assertEqual(len(self.fake.grants()), 20)
        e.sql("DELETE FROM s3grant.subscriptions WHERE user_id = (SELECT id FROM s3grant.users"
              " WHERE username = 'q0')")        # 5 grants go: room for the refused 5
        # q0's 5 grants go and q4's 5 refused subscriptions take their place,
        # without another change or a resync.
        wait_until(lambda: self.counts(e) == {"active": 20} and len(self.fake.grants()) == 20, 30,
                   "the refused subscriptions granted once q0's grants are deleted")
        left = e.sql("SELECT count(*) FROM s3grant.grant_intents").strip()
        self.assertEqual(left, "0")


if __name__ == "__main__":
    unittest.main()
