"""Progress during long work: while the real daemon reconciles 2,000 grants
against a slow S3 Control fake (200 ms a call, 64 in flight: ~6 s), its
sd_notify STATUS= (read from the NOTIFY_SOCKET listener) says
"integration ID: reconciling N/M grants" with M the number of changes and N
growing, and drops it once the work is done.

S3G_NEEDS: pg
S3G_TIMEOUT: 180
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, S3ControlFake, wait_until  # noqa: E402

PROGRESS = re.compile(r"integration (\d+): reconciling (\d+)/(\d+) grants")
USERS, SOURCES = 40, 50


class ReconProgress(unittest.TestCase):
    def test_status_shows_progress(self):
        fake = S3ControlFake(latency_ms=200)
        fake.start()
        self.addCleanup(fake.stop)
        fake.add_state(instances=[{}])
        e = Env(fake, prefix="rp")
        self.addCleanup(e.close)
        iid = e.create_integration()
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'p' || i, 'arn:aws:iam::%s:user/p' || i"
              " FROM generate_series(0, %d) i" % (ACCOUNT, USERS - 1))
        e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-p/d' || i"
              " FROM generate_series(0, %d) i" % (iid, SOURCES - 1))
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, 'read'"
              " FROM s3grant.users u CROSS JOIN s3grant.data_sources d")
        total = USERS * SOURCES
        d = e.daemon()

        def progress(m):
            x = PROGRESS.search(m.get("STATUS", ""))
            return (int(x.group(1)), int(x.group(2)), int(x.group(3))) if x else None

        # Progress messages while the work goes on: at least two different
        # counts strictly between 0 and M, never going back.
        seen = []
        while len(set(n for _, n, _ in seen if 0 < n < total)) < 2:
            m = d.wait_notify(lambda m: progress(m) is not None, timeout=60)
            seen.append(progress(m))
        self.assertTrue(all(i == iid and t == total for i, _, t in seen), seen)
        counts = [n for _, n, _ in seen]
        self.assertEqual(counts, sorted(counts), "progress went back: %r" % counts)
        # the fake agrees that the work was under way at that moment
        self.assertLess(counts[-1], total)

        # Done: every grant exists and a later STATUS no longer says reconciling.
        wait_until(lambda: len(fake.grants()) == total, 120, "%d grants" % total)
        m = d.wait_notify(lambda m: "STATUS" in m and "reconciling" not in m["STATUS"], timeout=30)
        self.assertIn("1 integration", m["STATUS"])
        last = [progress(x) for x in d.notify.messages if progress(x)]
        self.assertTrue(all(n <= total for _, n, _ in last), last)


if __name__ == "__main__":
    unittest.main()
