"""Export N grants (default 100,000) through the real s3grantd into moto with
auth on, and print wall time, the daemon's CPU time and its peak RSS growth
over idle for that one export. Not a CTest test (no test_ prefix): run by hand
with the shared Postgres fixture up, e.g.

  ctest -R pg_start   # in the build directory
  PGHOST=/tmp/s3g-pg-<hash>/sock S3G_BUILD_DIR=build python3 bench/bench_export_s3.py 100000

SINK=1 uses the directory sink instead of S3 (the upload's own share). The
start-up work of the daemon (the reconciler's first look at N subscriptions)
is left to settle and VmHWM is reset (/proc/PID/clear_refs, needs root or the
daemon's uid) before `s3grantctl export run`, so the figure is the export's.
"""
import json
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "export"))   # the moto setup of the export test
import test_export_s3_moto as T  # noqa: E402
from daemon_harness import Daemon  # noqa: E402
from pgtmp import fresh_db, psql  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
T.NGRANTS = N
SINK = bool(os.environ.get("SINK"))


class Bench(T.ExportS3Moto):
    def runTest(self):
        self.db = fresh_db("bench")
        self.assertEqual(self.ctl(["db", "migrate"]).returncode, 0)
        self.tenant = json.loads(self.ctl(["tenant"], json_out=True).stdout)["tenantId"]
        psql(self.db, T.SEED_SQL.replace("generate_series(1, %d)" % 40, "generate_series(1, %d)" % N)
             .replace("lpad(g::text, 5", "lpad(g::text, 7"))
        psql(self.db, "DELETE FROM s3grant.change_queue")   # the reconciler has nothing queued
        self.set_config(self.keys_body())
        if SINK:
            sink = tempfile.mkdtemp(prefix="s3g-bench-sink-")
            init = Daemon.__init__

            def with_sink(d, conf, **kw):
                init(d, conf.replace("[secrets]", "sink_dir = %s\n[secrets]" % sink), **kw)
            Daemon.__init__ = with_sink
        d = self.daemon()
        pid = d.proc.pid

        def cpu():
            f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

        def kb(field):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1])

        prev, same = -1, 0
        while same < 6:   # a bench, not a test: wait for start-up work to settle
            time.sleep(0.5)
            h = kb("VmHWM:")
            same, prev = (same + 1 if h == prev else 0), h
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")   # VmHWM := VmRSS
        idle = kb("VmRSS:")
        c0, t0 = cpu(), time.monotonic()
        self.ctl(["export", "run"])
        d.wait_log(lambda l: 'msg="access summary exported"' in l and "manual=yes" in l, timeout=600)
        wall, c1, hwm = time.monotonic() - t0, cpu(), kb("VmHWM:")
        size = 0
        if not SINK:
            m = self.check_objects(self.last_export()["prefix"])
            size = sum(f["bytes"] for f in m["files"])
        print("grants=%d sink=%s wall=%.2fs daemon_cpu=%.2fs rss_idle=%.1fMB peak_growth=%.1fMB objects=%.1fMB"
              % (N, "dir" if SINK else "s3", wall, c1 - c0, idle / 1024, (hwm - idle) / 1024, size / 1e6))
        self.stop(d)


if __name__ == "__main__":
    unittest.TextTestRunner(verbosity=1).run(unittest.TestSuite([Bench()]))
