"""The daemon started before Postgres is up becomes ready once it is.

S3G_TIMEOUT: 120
"""
import os
import unittest

from daemon_harness import Daemon
from pgtmp import PgTmp


class PgLate(unittest.TestCase):
    def test_ready_once_postgres_starts(self):
        pg = PgTmp()
        self.addCleanup(pg.stop)
        d = Daemon("[database]\nconninfo = host=%s port=5432 user=postgres dbname=postgres\n"
                   "connect_timeout = 2s\nreconnect_max_backoff = 1s\n" % pg.host)
        self.addCleanup(d.stop)
        d.start()
        m = d.wait_notify(lambda m: m.get("STATUS", "").startswith("waiting for database:"))
        self.assertNotIn("READY", m)
        d.wait_log("cannot connect to database")
        self.assertEqual(len([x for x in d.notify.messages if "READY" in x]), 0)
        pg.start()
        m = d.wait_notify("READY=1", timeout=30)
        self.assertIn("connected to database", m["STATUS"])

    def test_reconnects_after_postgres_restart(self):
        pg = PgTmp().start()
        self.addCleanup(pg.stop)
        d = Daemon("[database]\nconninfo = host=%s port=5432 user=postgres dbname=postgres\n"
                   "reconnect_max_backoff = 1s\n" % pg.host)
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify("READY=1", timeout=30)
        pg.stop()
        d.wait_log("database connection lost", timeout=30)
        d.wait_notify(lambda m: m.get("STATUS", "").startswith("waiting for database:"))
        pg.start()
        m = d.wait_notify(lambda m: "connected to database" in m.get("STATUS", ""), timeout=30)
        self.assertNotIn("READY", m)  # READY=1 is sent once per start
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    unittest.main()
