"""The daemon's change-queue watcher: NOTIFY wake-up, reconnect catch-up,
poisoned keys, and READY only after LISTEN.

S3G_NEEDS: pg
S3G_TIMEOUT: 120
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchlib import (Daemon, add_sources, conf, field, migrated_db, psql,  # noqa: E402
                      queue_keys, wait_keys)


class WatchNotify(unittest.TestCase):
    def setUp(self):
        self.db = migrated_db("watchn")

    def daemon(self, text, env=None):
        d = Daemon(text, env=env)
        self.addCleanup(d.stop)
        return d

    def test_commit_wakes_listener_not_poll(self):
        # A 1 h poll interval: only the NOTIFY can explain a prompt claim.
        d = self.daemon(conf(self.db, poll="1h")).start()
        m = d.wait_notify("READY=1")
        self.assertIn("queue listening", m.get("STATUS", ""))
        # READY=1 came after LISTEN was up (STYLE 17).
        d.wait_log("msg=ready")
        lines = d.stderr.splitlines()
        listen = [i for i, l in enumerate(lines) if 'msg="listening for changes"' in l]
        ready = [i for i, l in enumerate(lines) if "msg=ready" in l]
        self.assertTrue(listen and ready and listen[0] < ready[0], d.stderr)
        self.assertEqual(field(lines[listen[0]], "reconnect"), "no")
        # The listener's backend is named for operators.
        self.assertEqual(psql(self.db, "SELECT count(*) FROM pg_stat_activity WHERE"
                                       " application_name = 's3grantd-watch'"
                                       " AND datname = current_database()").strip(), "1")
        t0 = time.monotonic()
        keys = add_sources(self.db, 1, 3)
        wait_keys(d, "acked changes", keys, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 5.0)
        self.assertEqual(queue_keys(self.db) & set(keys), set())
        # Progress shows in STATUS (refreshed at most once a second).
        d.wait_notify(lambda m: "changes done" in m.get("STATUS", "")
                      and "0 changes done" not in m.get("STATUS", ""), timeout=10, since=0)

    def test_reconnect_relisten_catch_up(self):
        d = self.daemon(conf(self.db, poll="1h")).start()
        d.wait_notify("READY=1")
        pid = psql(self.db, "SELECT pid FROM pg_stat_activity WHERE application_name = 's3grantd-watch'"
                            " AND datname = current_database()").strip()
        self.assertTrue(pid.isdigit(), pid)
        # Kill the listener and commit changes in the same transaction: the
        # NOTIFY goes out at commit, when no listener of ours exists, so
        # only the catch-up claim after the reconnect can find them.
        rows = psql(self.db, "BEGIN;"
                             " SELECT pg_terminate_backend(%s);"
                             " INSERT INTO s3grant.data_sources (integration_id, prefix)"
                             "  SELECT 1, 'away' || g FROM generate_series(1, 5) g RETURNING id;"
                             " COMMIT;" % pid)
        ids = [r for r in rows.split() if r not in ("t", "f")]
        keys = ["d:1:%s" % i for i in ids]
        self.assertEqual(len(keys), 5)
        d.wait_log("change-queue connection lost", timeout=10)
        d.wait_log(lambda l: 'msg="listening for changes"' in l and "reconnect=yes" in l, timeout=15)
        wait_keys(d, "acked changes", keys, timeout=10)
        self.assertEqual(queue_keys(self.db) & set(keys), set())
        # A new backend, and still only one listener.
        pid2 = psql(self.db, "SELECT pid FROM pg_stat_activity WHERE application_name = 's3grantd-watch'"
                             " AND datname = current_database()").split()
        self.assertEqual(len(pid2), 1)
        self.assertNotEqual(pid2[0], pid)
        # And NOTIFY works on the new connection (poll is still 1 h).
        more = add_sources(self.db, 100, 2)
        wait_keys(d, "acked changes", more, timeout=10)

    def test_poisoned_key_released_with_backoff_others_flow(self):
        d = self.daemon(conf(self.db, poll="300ms"),
                        env={"S3GRANTD_TEST_REJECT_KEYS": "d:1:*2"}).start()
        d.wait_notify("READY=1")
        keys = add_sources(self.db, 1, 3)          # d:1:1 d:1:2 d:1:3 (ids start at 1)
        bad = [k for k in keys if k.endswith("2")]
        good = [k for k in keys if not k.endswith("2")]
        self.assertEqual(len(bad), 1)
        wait_keys(d, "acked changes", good, timeout=10)
        line = d.wait_log(lambda l: "change rejected" in l and field(l, "key") == bad[0], timeout=10)
        self.assertEqual(field(line, "attempt"), "1")
        d.wait_log(lambda l: 'msg="released changes"' in l and bad[0] in (field(l, "keys") or ""),
                   timeout=10)
        # The row is still queued, unowned, not claimable until its backoff ends.
        row = psql(self.db, "SELECT locked_by IS NULL, locked_until > clock_timestamp(), attempts"
                            " FROM s3grant.change_queue WHERE key = '%s'" % bad[0]).strip()
        self.assertTrue(row.startswith("t|"), row)
        # Others still go through meanwhile.
        later = add_sources(self.db, 10, 2)
        wait_keys(d, "acked changes", later, timeout=10)
        # Retried after the backoff (1 s), with the attempt counted.
        line = d.wait_log(lambda l: "change rejected" in l and field(l, "key") == bad[0]
                          and field(l, "attempt") == "2", timeout=15)
        self.assertEqual(field(line, "retry_ms"), "2000")
        self.assertIn(bad[0], queue_keys(self.db))


if __name__ == "__main__":
    unittest.main()
