"""Crash safety: kill -9 the daemon at random moments during a 5,000-grant
reconcile, 20 times, restarting each time; then let it finish. The fake's
final state equals the desired state: every desired grant exactly once, no
duplicate, no orphan; the record agrees and no intent is left.

S3G_NEEDS: pg
S3G_TIMEOUT: 600
"""
import os
import random
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, S3ControlFake, wait_until  # noqa: E402

USERS, SOURCES = 100, 50


class ReconCrash(unittest.TestCase):
    def test_kill9_during_reconcile(self):
        fake = S3ControlFake(latency_ms=30, latency_jitter_ms=20)
        fake.start()
        self.addCleanup(fake.stop)
        fake.add_state(instances=[{}])
        e = Env(fake)
        self.addCleanup(e.close)
        iid = e.create_integration()
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'u' || i, 'arn:aws:iam::%s:user/u' || i"
              " FROM generate_series(0, %d) i" % (ACCOUNT, USERS - 1))
        e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-a/p' || i"
              " FROM generate_series(0, %d) i" % (iid, SOURCES - 1))
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, 'read'"
              " FROM s3grant.users u CROSS JOIN s3grant.data_sources d")
        want = set(("arn:aws:iam::%s:user/u%d" % (ACCOUNT, u), "READ", "s3://bucket-a/p%d*" % s)
                   for u in range(USERS) for s in range(SOURCES))
        rng = random.Random(int(os.environ.get("S3G_CRASH_SEED", "4")))
        progress = []
        for _ in range(20):
            d = e.daemon()
            # A random moment of the reconcile (the randomness is the point, not synchronisation).
            time.sleep(rng.uniform(0.05, 0.8))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(timeout=10)
            d.stop()
            progress.append(len(fake.grants()))
        self.assertLess(progress[0], len(want), "the first kill came after the reconcile: %r" % progress)
        d = e.daemon()
        wait_until(lambda: len(fake.grants()) >= len(want), 300, "every grant created")
        wait_until(lambda: e.sql("SELECT count(*) FROM s3grant.grant_intents").strip() == "0", 120,
                   "intents resolved")
        got = [(g["grantee"], g["permission"], g["scope"]) for g in fake.grants()]
        self.assertEqual(len(got), len(set(got)), "duplicate grants")
        self.assertEqual(set(got), want)
        self.assertEqual(e.sql("SELECT count(*) FROM s3grant.grants").strip(), str(len(want)))
        print("grants after each kill:", progress, file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
