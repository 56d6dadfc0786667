"""s3grantd under a fake service manager: READY, reload, watchdog, stop.

S3G_NEEDS: pg
S3G_TIMEOUT: 120
"""
import os
import signal
import time
import unittest

from daemon_harness import Daemon
from pgtmp import fresh_db


def conf(conninfo, extra=""):
    return ("[database]\nconninfo = %s\nreconnect_max_backoff = 1s\n"
            "[daemon]\nlog_level = info\nshutdown_timeout = 5s\n%s" % (conninfo, extra))


class Lifecycle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.conninfo = fresh_db("daemon")

    def daemon(self, extra="", **kw):
        d = Daemon(conf(self.conninfo, extra), **kw)
        self.addCleanup(d.stop)
        return d

    def test_ready_after_db(self):
        d = self.daemon().start()
        m = d.wait_notify("READY=1")
        self.assertIn("connected to database", m.get("STATUS", ""))
        self.assertEqual(m["_pid"], d.proc.pid)
        d.wait_log("msg=ready")

    def test_sighup_reloading_then_ready(self):
        d = self.daemon().start()
        d.wait_notify("READY=1")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.signal(signal.SIGHUP)
        m = d.wait_notify("RELOADING=1")
        # MONOTONIC_USEC travels in the same datagram, and is a fresh
        # CLOCK_MONOTONIC reading.
        self.assertIn("MONOTONIC_USEC", m)
        usec = int(m["MONOTONIC_USEC"])
        self.assertGreaterEqual(usec, before)
        self.assertLess(usec, before + 10_000_000)
        d.wait_notify("READY=1")
        d.wait_log("configuration reloaded")

    def test_sighup_broken_file_keeps_old(self):
        d = self.daemon("status_interval = 1s\n").start()
        d.wait_notify("READY=1")
        d.write_config(conf(self.conninfo, "status_interval = 1s\n") + "bogus_key = 1\n[aws]\nmax_in_flight = 0\n")
        d.signal(signal.SIGHUP)
        d.wait_notify("RELOADING=1")
        m = d.wait_notify("READY=1")
        status = m.get("STATUS", "")
        self.assertIn("config reload failed", status)
        self.assertIn("s3grantd.conf:", status)
        line = d.wait_log("config reload failed")
        self.assertIn("level=warning", line)
        # Each problem is its own log line; wait for them rather than
        # reading a snapshot of stderr that may not hold the second yet.
        d.wait_log("s3grantd.conf:8: daemon.bogus_key: unknown key")
        d.wait_log("s3grantd.conf:10: aws.max_in_flight: 0 out of range")
        self.assertIsNone(d.proc.poll())
        # Still running with the old config: the 1 s status timer keeps
        # refreshing STATUS with the failure noted.
        d.wait_notify(lambda m: "config reload failed" in m.get("STATUS", "") and "READY" not in m, timeout=5)
        # A fixed file clears the note.
        d.write_config(conf(self.conninfo, "status_interval = 1s\n"))
        d.signal(signal.SIGHUP)
        d.wait_notify("RELOADING=1")
        m = d.wait_notify("READY=1")
        self.assertNotIn("failed", m.get("STATUS", ""))

    def test_reloadable_applied_restart_only_reported(self):
        d = self.daemon("status_interval = 1s\n").start()
        d.wait_notify("READY=1")
        self.assertNotIn("level=debug", d.stderr)
        d.write_config(conf(self.conninfo + " application_name=changed",
                            "status_interval = 1s\n").replace("log_level = info", "log_level = debug"))
        d.signal(signal.SIGHUP)
        m = d.wait_notify("READY=1")
        d.wait_log("configuration changed: daemon.log_level")
        line = d.wait_log("restart required for [database] conninfo")
        self.assertIn("level=warning", line)
        self.assertIn("restart required for database.conninfo", m.get("STATUS", ""))
        # log_level took effect: the status timer's debug line appears.
        d.wait_log(lambda l: "level=debug" in l and "msg=status" in l, timeout=5)

    def test_watchdog_half_interval(self):
        usec = 1_000_000
        d = self.daemon().start(watchdog_usec=usec)
        d.wait_notify("READY=1")
        d.wait_log("watchdog_ms=500")
        first = d.wait_notify("WATCHDOG=1", timeout=3)
        stamps = [first["_t"]]
        for _ in range(5):
            stamps.append(d.wait_notify("WATCHDOG=1", timeout=3)["_t"])
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        # At most half the interval (0.5 s) apart, with scheduling slack.
        self.assertLessEqual(max(gaps), usec / 2 / 1e6 + 0.1, gaps)
        self.assertGreater(min(gaps), 0.3, gaps)

    def test_no_watchdog_when_pid_differs(self):
        d = self.daemon(env={"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).start()
        d.wait_notify("READY=1")
        d.wait_log("watchdog_ms=0")

    def test_sigterm_stops_cleanly(self):
        d = self.daemon().start()
        d.wait_notify("READY=1")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        self.assertEqual(d.wait_exit(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 5)
        d.wait_log("msg=stopped")

    def test_sigint_stops_cleanly(self):
        d = self.daemon().start()
        d.wait_notify("READY=1")
        d.signal(signal.SIGINT)
        d.wait_notify("STOPPING=1")
        self.assertEqual(d.wait_exit(timeout=5), 0)

    def test_drain_deadline(self):
        # One unit of work that never finishes: the drain lasts exactly
        # shutdown_timeout, then the daemon exits 0.
        d = Daemon(conf(self.conninfo).replace("shutdown_timeout = 5s", "shutdown_timeout = 1s"),
                   env={"S3GRANTD_TEST_HOLD_WORK": "1"})
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify("READY=1")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        m = d.wait_notify("STOPPING=1")
        # The held unit, plus the export's start-up check when it is still
        # on its worker thread (it cannot be cancelled, so the drain counts it).
        self.assertRegex(m.get("STATUS", ""), r"draining [12] in-flight")
        self.assertEqual(d.wait_exit(timeout=5), 0)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3.0)
        d.wait_log("shutdown_timeout reached")

    def test_second_signal_exits_at_once(self):
        d = Daemon(conf(self.conninfo).replace("shutdown_timeout = 5s", "shutdown_timeout = 10m"),
                   env={"S3GRANTD_TEST_HOLD_WORK": "1"})
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify("READY=1")
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        d.wait_log("msg=stopping")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 1.0)
        d.wait_log("second signal")

    def test_sigpipe_ignored(self):
        d = self.daemon().start()
        d.wait_notify("READY=1")
        d.signal(signal.SIGPIPE)
        d.signal(signal.SIGHUP)   # still alive and answering afterwards
        d.wait_notify("RELOADING=1")
        d.wait_notify("READY=1")
        self.assertIsNone(d.proc.poll())

    def test_bad_config_at_start_exits_nonzero(self):
        d = Daemon("[daemon]\nlog_level = loud\n")
        self.addCleanup(d.stop)
        d.start()
        self.assertNotEqual(d.wait_exit(timeout=5), 0)
        d.wait_log("s3grantd.conf:2: daemon.log_level")


if __name__ == "__main__":
    unittest.main()
