"""s3grantd --check-config: the shipped file passes; each kind of error is
reported as file:line: key: reason, all of them, with a non-zero exit."""
import os
import re
import tempfile
import unittest

from daemon_harness import SRC, run_binary


def check(text):
    fd, path = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return path, run_binary(["--check-config", "--config", path])
    finally:
        os.unlink(path)


class CheckConfig(unittest.TestCase):
    def test_shipped_file_ok(self):
        r = run_binary(["--check-config", os.path.join(SRC, "etc", "s3grantd.conf")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_unknown_key(self):
        path, r = check("[daemon]\nlog_level = info\nlog_colour = red\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:3: daemon.log_colour: unknown key" % path, r.stderr)

    def test_bad_value(self):
        path, r = check("[database]\nconnect_timeout = soon\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, re.escape(path) + r":2: database.connect_timeout: .*not a duration")

    def test_out_of_range(self):
        path, r = check("[aws]\nmax_in_flight = 100000\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:2: aws.max_in_flight: 100000 out of range [1, 1024]" % path, r.stderr)

    def test_all_errors_reported(self):
        path, r = check("[daemon]\nnope = 1\nshutdown_timeout = 1y\n[aws]\nmax_attempts = 0\n")
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().split("\n")
        self.assertEqual(len(lines), 3, r.stderr)
        for n, line in zip((2, 3, 5), lines):
            self.assertTrue(line.startswith("%s:%d: " % (path, n)), line)

    def test_missing_file(self):
        r = run_binary(["--check-config", "--config", "/nonexistent/s3grantd.conf"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/s3grantd.conf", r.stderr)

    def test_version_and_help(self):
        r = run_binary(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^s3grantd \d+\.\d+")
        r = run_binary(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)

    def test_dump_redacts(self):
        fd, path = tempfile.mkstemp(suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write("[database]\nconninfo = host=x password=DumpSecret1\n"
                    "[aws]\naccess_key_id = AKIDX\nsecret_access_key = DumpSecret2\n")
        try:
            r = run_binary(["--dump-config", "--config", path])
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("conninfo = <redacted>", r.stdout)
        self.assertIn("access_key_id = AKIDX", r.stdout)
        self.assertNotIn("DumpSecret", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
