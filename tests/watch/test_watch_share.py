"""Several daemons on one change queue: disjoint claims, a killed daemon's
expired lease reclaimed by another, drain releasing unacked claims.

S3G_NEEDS: pg
S3G_TIMEOUT: 150
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchlib import (Daemon, acked, add_sources, claimed, conf, migrated_db, psql,  # noqa: E402
                      queue_keys, wait_daemons, wait_keys)


class WatchShare(unittest.TestCase):
    def setUp(self):
        self.db = migrated_db("watchs")

    def daemon(self, text, env=None):
        d = Daemon(text, env=env)
        self.addCleanup(d.stop)
        return d

    def test_two_daemons_never_hold_the_same_key(self):
        # Small batches and a slow consumer so both daemons claim in turn.
        text = conf(self.db, poll="500ms", extra_reconcile="queue_batch = 7\n")
        env = {"S3GRANTD_TEST_CONSUMER_DELAY_MS": "30"}
        a = self.daemon(text, env).start()
        b = self.daemon(text, env).start()
        a.wait_notify("READY=1")
        b.wait_notify("READY=1")
        keys = add_sources(self.db, 1, 300)
        self.assertEqual(len(keys), 300)
        # Every key gets processed by one of them.
        wait_daemons([a, b], lambda: set(keys) <= set(acked(a)) | set(acked(b)), timeout=60)
        ca, cb = claimed(a), claimed(b)
        self.assertEqual(len(ca), len(set(ca)), "a daemon claimed a key twice")
        self.assertEqual(len(cb), len(set(cb)), "a daemon claimed a key twice")
        self.assertEqual(set(ca) & set(cb), set(), "both daemons held the same key")
        self.assertEqual(set(ca) | set(cb), set(keys))
        self.assertTrue(ca and cb, "one daemon claimed nothing: %d/%d" % (len(ca), len(cb)))
        self.assertEqual(queue_keys(self.db), set())

    def test_killed_daemons_lease_is_reclaimed(self):
        # a holds its claims (slow consumer) with a 2 s lease, and dies.
        a = self.daemon(conf(self.db, poll="1h", extra_reconcile="queue_lease = 2s\n"),
                        env={"S3GRANTD_TEST_CONSUMER_DELAY_MS": "3600000"}).start()
        a.wait_notify("READY=1")
        keys = add_sources(self.db, 1, 4)
        wait_keys(a, "claimed changes", keys, timeout=10)
        who = psql(self.db, "SELECT DISTINCT locked_by FROM s3grant.change_queue").split()
        self.assertEqual(len(who), 1)
        self.assertIn(":%d:" % a.proc.pid, who[0])
        a.signal(signal.SIGKILL)
        a.wait_exit()
        # b finds them on its poll once the lease expired.
        b = self.daemon(conf(self.db, poll="300ms")).start()
        b.wait_notify("READY=1")
        wait_keys(b, "acked changes", keys, timeout=15)
        self.assertEqual(queue_keys(self.db), set())
        # Claimed twice in all: once by a, once by b.
        self.assertEqual(set(claimed(b)), set(keys))

    def test_drain_releases_unacked_claims(self):
        a = self.daemon(conf(self.db, poll="1h", extra="") .replace("shutdown_timeout = 5s",
                                                                    "shutdown_timeout = 1s"),
                        env={"S3GRANTD_TEST_CONSUMER_DELAY_MS": "3600000"}).start()
        a.wait_notify("READY=1")
        keys = add_sources(self.db, 1, 3)
        wait_keys(a, "claimed changes", keys, timeout=10)
        a.signal(signal.SIGTERM)
        a.wait_notify("STOPPING=1")
        self.assertEqual(a.wait_exit(timeout=20), 0)
        a.wait_log(lambda l: 'msg="released changes"' in l, timeout=5)
        rows = psql(self.db, "SELECT key, locked_by IS NULL, locked_until IS NULL"
                             " FROM s3grant.change_queue ORDER BY key").split()
        self.assertEqual(sorted(r.split("|")[0] for r in rows), sorted(keys))
        for r in rows:
            self.assertTrue(r.endswith("|t|t"), r)   # claimable again at once

    def test_drain_waits_for_consumer_then_acks(self):
        a = self.daemon(conf(self.db, poll="1h"),
                        env={"S3GRANTD_TEST_CONSUMER_DELAY_MS": "1500"}).start()
        a.wait_notify("READY=1")
        keys = add_sources(self.db, 1, 2)
        wait_keys(a, "claimed changes", keys, timeout=10)
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(timeout=20), 0)
        wait_keys(a, "acked changes", keys, timeout=5)
        self.assertEqual(queue_keys(self.db), set())


if __name__ == "__main__":
    unittest.main()
