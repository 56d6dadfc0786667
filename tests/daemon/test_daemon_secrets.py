"""Sensitive config values never reach stderr (logfmt) or sd_notify STATUS,
across start, reload (also a reload that changes them), a broken reload,
database loss and stop. The journal side is tests/daemon/test_log_journal.c.

S3G_NEEDS: pg
"""
import signal
import unittest

from daemon_harness import Daemon
from pgtmp import fresh_db

PW1 = "Pg-Pass-4711-alpha"
PW2 = "Pg-Pass-4712-beta"
SK1 = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETONE"
SK2 = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETTWO"


def conf(conninfo, pw, sk, extra=""):
    # Trust authentication ignores the password, so the daemon connects.
    return ("[database]\nconninfo = %s password=%s\nreconnect_max_backoff = 1s\n"
            "[daemon]\nlog_level = debug\nstatus_interval = 1s\n"
            "[aws]\naccess_key_id = AKIDEXAMPLE\nsecret_access_key = %s\n%s"
            % (conninfo, pw, sk, extra))


class Secrets(unittest.TestCase):
    def test_never_in_stderr_or_status(self):
        conninfo = fresh_db("secrets")
        d = Daemon(conf(conninfo, PW1, SK1))
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify("READY=1")
        d.wait_log("configuration loaded")
        # Reload with other secrets (conninfo is restart-only, the secret key too).
        d.write_config(conf(conninfo, PW2, SK2))
        d.signal(signal.SIGHUP)
        d.wait_notify("READY=1")
        d.wait_log("restart required for [database] conninfo")
        # A broken file whose bad line holds a secret.
        d.write_config(conf(conninfo, PW2, SK2, "[database]\nconninfo = 'password=%s\n" % PW2))
        d.signal(signal.SIGHUP)
        m = d.wait_notify("READY=1")
        self.assertIn("config reload failed", m["STATUS"])
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=10), 0)
        d.reader.join(timeout=5)
        err = d.stderr
        self.assertIn("<redacted>", err)
        self.assertIn("level=debug", err)
        notify = "\n".join(x["_raw"] for x in d.notify.messages)
        for secret in (PW1, PW2, SK1, SK2):
            self.assertNotIn(secret, err)
            self.assertNotIn(secret, notify)

    def test_never_in_connection_errors(self):
        # An unreachable server: the failures are logged with the conninfo.
        d = Daemon("[database]\nconninfo = host=/nonexistent/sock user=u password=%s\n"
                   "reconnect_max_backoff = 1s\n[daemon]\nlog_level = debug\n" % PW1)
        self.addCleanup(d.stop)
        d.start()
        d.wait_notify(lambda m: m.get("STATUS", "").startswith("waiting for database"))
        d.wait_log("cannot connect to database")
        d.wait_log(lambda l: "attempt=2" in l)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=10), 0)
        d.reader.join(timeout=5)
        self.assertIn("password=<redacted>", d.stderr)
        self.assertNotIn(PW1, d.stderr)
        self.assertNotIn(PW1, "\n".join(x["_raw"] for x in d.notify.messages))


if __name__ == "__main__":
    unittest.main()
