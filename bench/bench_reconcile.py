#!/usr/bin/env python3
"""bench_reconcile.py — the reconciler's figures (issue 4, must-show 5), by hand:

    python3 bench/bench_reconcile.py --build build-rel [--grants 100000] [--commits 200]

Runs the real s3grantd (use a Release build), a private throwaway PostgreSQL
(scripts/pg-tmp) and the S3 Control fake (tests/fakes/s3control), and prints one
table with each figure next to its bound or baseline from the same run:

 1. full reconcile of N grants from empty, fake at 10 ms latency, [aws]
    max_in_flight = 64, [reconcile] rate_limit = 10000 (does not bind). The
    10 ms are held by bench/latency_front in front of the fake (at 0 ms): each
    answer leaves 10 ms after its request reached the front, the fake's work
    inside that time, as a real service's is; the front also measures the
    daemon's share of each round trip (answer out -> next request in). With
    --fake-timer the fake holds the answers itself, timed from when its one
    thread reads the request: under this load 0.5-1 ms after it arrived
    (loopback capture: 11.05 ms from request packet to answer packet at
    10 ms), which alone caps any client at 64 / 11.05 ms = 90.5 % of the bound;
    grants/s against the Little's-law bound 64 / 10 ms = 6,400/s (target >= 90 %),
    daemon CPU per grant (/proc/PID/stat utime+stime), Postgres CPU per grant,
    the fake's own CPU use over the same interval (is the fake the bottleneck?)
    and the mean time a request spends in it (arrival to close: the latency plus
    its queueing), and the SAME N creates by boto3 with 64 threads against a
    fresh fake at the same latency; N creates by bench/bench_aws (the daemon's
    AWS layer alone, 64 in flight: no reconciler, no Postgres) the same way,
    what this machine and harness allow any client built on that layer
    (--skip-ceiling leaves it out); every fake is warmed with 20,000 creates
    and reset first; --pg-stats adds the statements Postgres spent that time on;
 2. no-drift resync of N grants: the daemon resyncs every integration at start
    (daemon/recon.c: rint_get sets want_resync), so it is restarted and timed
    until integration_health.last_resync_at moves (wall and daemon CPU);
 3. commit -> CreateAccessGrant at the fake, fake at 0 ms: single-subscription
    commits one after the other (each waits for its grant and the subscription
    becoming active); the commit instant is bracketed by clock_timestamp()
    just before and just after COMMIT in the same psql session, the arrival
    is the fake's log time (ms); p50/p99 with the pre-commit time (upper bound);
    also on the integration holding N grants (--big-commits);
 4. peak RSS (VmHWM) of the daemon that created, and of the one that resynced,
    N grants.

Nothing here is a test: it measures. Timings are read when the observable
event happens (a log line, a row, the fake's log); polling has a short period.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, ".."))
TICK = os.sysconf("SC_CLK_TCK")
IN_FLIGHT = 64   # tests/recon/reconlib.py's daemon config: [aws] max_in_flight = 64


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("S3G_BUILD_DIR", os.path.join(SRC, "build")),
                   help="build directory holding daemon/s3grantd and ctl/s3grantctl (Release)")
    p.add_argument("--grants", type=int, default=100000)
    p.add_argument("--users", type=int, default=1000, help="grants = users x data sources")
    p.add_argument("--latency-ms", type=int, default=10)
    p.add_argument("--commits", type=int, default=200, help="commit->create samples on a small integration")
    p.add_argument("--big-commits", type=int, default=30,
                   help="commit->create samples on the integration holding --grants grants (0: skip)")
    p.add_argument("--baseline-threads", type=int, default=64)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--skip-ceiling", action="store_true",
                   help="skip the same creates by bench/bench_aws (the AWS layer alone, no Postgres)")
    p.add_argument("--fake-timer", action="store_true",
                   help="hold answers with the fake's own latency_ms instead of bench/latency_front (the fake "
                        "then times them from when its one thread reads the request, 0.5-1 ms after it arrived)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--pg-stats", action="store_true",
                   help="load pg_stat_statements (track = all, utility too) and print the statements Postgres "
                        "spent the full reconcile's time on (measuring costs some CPU itself)")
    p.add_argument("--autogroup-nice", type=int, default=None,
                   help="this session's scheduler autogroup nice for the run (e.g. -10; root), restored after: "
                        "with sched_autogroup on, CPU is shared per session and the daemon, Postgres, the fake "
                        "and boto3 all sit in this one (plain nice(1) does not help against other sessions)")
    return p.parse_args()


ARGS = parse_args()
os.environ["S3G_BUILD_DIR"] = os.path.abspath(ARGS.build)
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
sys.path.insert(0, os.path.join(SRC, "tests", "recon"))
from pgtmp import PgTmp  # noqa: E402
from fakes import ACCOUNT, S3ControlFake, s3control_client  # noqa: E402
from daemon_harness import BINARY, Daemon  # noqa: E402
from benchlib import front_fake, set_autogroup_nice  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def cpu_s(pid):
    """utime + stime of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


PG_DATA = None   # the private server's data directory (set in main)


def pg_cpu_s():
    """CPU of the private Postgres: the postmaster with its reaped children
    (cutime/cstime) plus every live backend."""
    if not PG_DATA:
        return 0.0
    with open(os.path.join(PG_DATA, "postmaster.pid")) as f:
        pm = int(f.readline())
    with open("/proc/%d/stat" % pm) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in rest[11:15]) / TICK
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pm:
            total += (int(rest[11]) + int(rest[12])) / TICK
    return total


PG = None   # the private server (PgTmp)


def pg_stats_enable(pg):
    """Restart the private server with pg_stat_statements loaded."""
    from pgtmp import psql
    ci = pg.conninfo()
    psql(ci, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    cmd = ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(pg.dir, "data"), "-w", "-t", "60", "restart"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120)
    # the module's settings exist once it is loaded
    for sql in ("ALTER SYSTEM SET pg_stat_statements.track = 'all'",
                "ALTER SYSTEM SET pg_stat_statements.track_utility = on", "SELECT pg_reload_conf()",
                "CREATE EXTENSION pg_stat_statements"):
        psql(ci, sql)


def pg_stats_reset():
    if ARGS.pg_stats:
        from pgtmp import psql
        psql(PG.conninfo(), "SELECT pg_stat_statements_reset()")


def pg_stats_top(n_grants, limit=25):
    """The statements by total time since the last reset: (calls, rows, total ms, us per grant, query)."""
    if not ARGS.pg_stats:
        return None
    from pgtmp import psql
    out = psql(PG.conninfo(), "SELECT calls, rows, round(total_exec_time::numeric, 1),"
               " regexp_replace(left(query, 150), '\\s+', ' ', 'g') FROM pg_stat_statements"
               " ORDER BY total_exec_time DESC LIMIT %d" % limit)
    top = []
    for line in out.splitlines():
        calls, rows, ms, q = line.split("|", 3)
        top.append([int(calls), int(rows), float(ms), 1000.0 * float(ms) / n_grants, q])
    return top


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])   # kB
    return None


def machine_cpu():
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class Sample:
    def __init__(self, pids):
        self.t = time.monotonic()
        self.cpu = {k: cpu_s(p) for k, p in pids.items()}
        self.cpu["postgres"] = pg_cpu_s()
        self.machine = machine_cpu()


def delta(a, b):
    wall = b.t - a.t
    d = {k: b.cpu[k] - a.cpu[k] for k in a.cpu}
    mb, mt = b.machine[0] - a.machine[0], b.machine[1] - a.machine[1]
    return wall, d, (mb / mt if mt else 0.0)


def fake_time(entry):
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def log_ts(line):
    """The daemon's ts= of a logfmt line, epoch seconds."""
    ts = line.split("ts=", 1)[1].split(" ", 1)[0]
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def wait_until(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() > deadline:
            raise TimeoutError("%s not reached in %ss" % (what, timeout))
        time.sleep(interval)


class Psql:
    """One long-lived psql session; each call sends SQL and reads until a marker line."""

    def __init__(self, conninfo):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.n = 0

    def run(self, sql):
        self.n += 1
        mark = "__s3g_bench_%d__" % self.n
        self.p.stdin.write(sql + "\n\\echo " + mark + "\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("psql exited")
            line = line.rstrip("\n")
            if line == mark:
                return out
            out.append(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def seed(e, iid, users, sources, tag="u"):
    e.sql("INSERT INTO s3grant.users (username, principal) SELECT '%s' || i, 'arn:aws:iam::%s:user/%s' || i"
          " FROM generate_series(0, %d) i" % (tag, ACCOUNT, tag, users - 1))
    e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-%s/p' || i"
          " FROM generate_series(0, %d) i" % (iid, tag, sources - 1))
    e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, 'read'"
          " FROM s3grant.users u JOIN s3grant.data_sources d ON d.integration_id = %d"
          " WHERE u.username LIKE '%s%%'" % (iid, tag))


def settled_at(e, iid, n):
    """time.time() once the reconcile's record is complete, else None."""
    r = e.sql("SELECT (SELECT count(*) FROM s3grant.grant_intents) = 0"
              " AND (SELECT count(*) FROM s3grant.subscriptions WHERE status = 'active') = %d"
              " AND EXISTS (SELECT 1 FROM s3grant.integration_health WHERE integration_id = %d"
              " AND last_resync_at IS NOT NULL)" % (n, iid)).strip()
    return time.time() if r == "t" else None


def last_resync(e, iid):
    return e.sql("SELECT coalesce(extract(epoch FROM last_resync_at)::text, '') FROM s3grant.integration_health"
                 " WHERE integration_id = %d" % iid).strip()


def stop_gracefully(d, timeout=60):
    if d.proc and d.proc.poll() is None:
        d.signal(signal.SIGTERM)
        try:
            d.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            pass
    d.stop()


class FileDaemon(Daemon):
    """The harness's Daemon with stderr going to a file (as to journald) rather
    than a pipe: a Python reader falling behind 100,000 "grant created" lines
    must not block the daemon's writes and slow down what is measured."""

    def start(self, watchdog_usec=None):
        env = self.env()
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BINARY, "--config", self.config_path] + self.args, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log_file)
        self.reader = threading.Thread(target=self._tail, daemon=True)
        self.reader.start()
        return self

    def _tail(self):
        with open(self.log_path, "rb") as f:
            buf = b""
            while True:
                chunk = f.read(1 << 20)
                if chunk:
                    buf += chunk
                    *done, buf = buf.split(b"\n")
                    with self.cv:
                        self.lines.extend(x.decode("utf-8", "replace") for x in done)
                        self.cv.notify_all()
                    continue
                if self.proc.poll() is not None:
                    return
                time.sleep(0.02)


def bench_aws_creates(endpoint, n):
    """n CreateAccessGrant by build/bench/bench_aws, IN_FLIGHT at a time; its JSON line."""
    out = subprocess.run([os.path.join(ARGS.build, "bench", "bench_aws"), endpoint, str(n), str(IN_FLIGHT), "create"],
                         check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_fake(fake, n=20000):
    """n CreateAccessGrant by bench/bench_aws straight into a fresh fake (0 ms),
    then a reset: V8 compiles the fake's request path over its first ~10,000
    requests, which cost it about twice the CPU of later ones
    (tests/fakes/s3control/README.md): a start-up a real service does not
    have, on the CPUs the daemon shares. bench_aws.py's --warmup does the
    same."""
    fake.add_state(instances=[{}])
    bench_aws_creates(fake.endpoint, n)
    fake.reset(keep_config=True)


def start_fake(latency_ms):
    """The fake, answering latency_ms after a request arrives: behind
    bench/latency_front (which times that from the request's arrival at the
    front), or with its own timer (--fake-timer; latency 0 needs neither).
    Returns (the fake, what the daemon and boto3 talk to)."""
    if ARGS.fake_timer or not latency_ms:
        fake = S3ControlFake(latency_ms=latency_ms)
        fake.start()
        return fake, fake
    fake = S3ControlFake(latency_ms=0)
    fake.start()
    try:
        warm_fake(fake)
        return fake, front_fake(fake, ARGS.build, latency_ms)
    except BaseException:
        fake.stop()
        raise


def stop_fake(fake, seen):
    front = getattr(seen, "front", None)
    if front:
        front.stop()
    fake.stop()


def start_daemon(e, wait_ready=True):
    d = FileDaemon(e.conf(), env=e.env)
    e.daemons.append(d)
    d.start()
    if wait_ready:
        d.wait_notify("READY=1", timeout=60)
    return d


# --------------------------------------------------------------------------- phases

def phase_full(e, fake, iid, n):
    """1. + 4.: from empty to n grants; returns figures and the daemon (left running)."""
    log("phase 1: full reconcile of %d grants, fake at %d ms" % (n, ARGS.latency_ms))
    d = start_daemon(e)
    pid = d.proc.pid
    # The wall time is taken from the daemon's own ts= of both lines (the
    # stderr reader may lag behind 100,000 "grant created" lines); CPU is
    # sampled when each line is read, so it includes the lag's idle time only.
    front = getattr(fake, "front", None)
    first = d.wait_log(lambda l: "reconciling %d grant change" % n in l, timeout=600)
    a = Sample({"daemon": pid, "fake": fake.pid})
    if front:
        front.figures()
    pg_stats_reset()
    line = d.wait_log(lambda l: "reconciled " in l and "grant changes" in l, timeout=1800)
    b = Sample({"daemon": pid, "fake": fake.pid})
    front_fig = front.figures() if front else None
    top_creates = pg_stats_top(n)
    _, cpu, busy = delta(a, b)
    wall = log_ts(line) - log_ts(first)
    # ... and until the record is complete: no intent left, every subscription
    # active, the health row written (what a restart or s3grantctl status sees).
    log("AWS side done; waiting for the record (intents, statuses, health)")
    settled = wait_until(lambda: settled_at(e, iid, n), 900, "record complete", interval=0.1)
    c = Sample({"daemon": pid, "fake": fake.pid})
    _, cpu_rec, _ = delta(a, c)
    top_recorded = pg_stats_top(n)
    hwm = vm(pid, "VmHWM")
    creates = [x for x in fake.log() if x["op"] == "CreateAccessGrant"]
    ok = [x for x in creates if x["status"] == 200]
    st = fake.stats()
    t_first, t_last = fake_time(ok[0]), fake_time(ok[-1])
    fake_rate = (len(ok) - 1) / (t_last - t_first) if t_last > t_first else float("nan")
    per_s = {}
    for x in ok:
        sec = int(fake_time(x) - t_first)
        per_s[sec] = per_s.get(sec, 0) + 1
    secs = [per_s.get(i, 0) for i in range(int(t_last - t_first))]   # whole seconds only
    log("phase 1 done: %s" % line)
    return d, {
        "grants": len(ok), "create_calls": len(creates), "wall_s": wall, "grants_per_s": len(ok) / wall,
        "recorded_wall_s": settled - log_ts(first), "daemon_cpu_to_recorded_s": cpu_rec["daemon"],
        "postgres_cpu_s": cpu["postgres"], "postgres_cpu_to_recorded_s": cpu_rec["postgres"],
        "fake_window_grants_per_s": fake_rate,
        "per_second_p10_p50_p90_max": [pct(secs, 10), pct(secs, 50), pct(secs, 90), max(secs or [0])],
        "daemon_cpu_s": cpu["daemon"], "daemon_cpu_us_per_grant": 1e6 * cpu["daemon"] / len(ok),
        "fake_cpu_s": cpu["fake"], "fake_core_use": cpu["fake"] / wall, "machine_busy": busy,
        "fake_max_inflight": st.get("max_inflight"), "daemon_vmhwm_kb": hwm,
        "fake_ms_per_request": st.get("resident_ms", 0.0) / max(st.get("requests", 0), 1),
        "fake_turnaround_ms": st.get("turnaround_ms", 0.0) / max(st.get("turnarounds", 0), 1),
        "front": front_fig,
        "in_fake": len(fake.grants()),
        "pg_top_creates": top_creates, "pg_top_recorded": top_recorded,
    }


def phase_resync(e, fake, iid, n, d_old):
    """2. + 4.: restart; the start-up resync lists n grants and changes nothing."""
    log("phase 2: no-drift resync of %d grants (restart)" % n)
    before = last_resync(e, iid)
    stop_gracefully(d_old)
    fake.clear_log()
    fake.clear_stats()
    t0 = time.monotonic()
    d = start_daemon(e, wait_ready=False)
    pid = d.proc.pid
    c0 = cpu_s(pid)
    fk0 = cpu_s(fake.pid)
    pg0 = pg_cpu_s()
    d.wait_notify("READY=1", timeout=60)
    t_ready = time.monotonic()
    wait_until(lambda: last_resync(e, iid) not in ("", before), 900, "resync recorded", interval=0.05)
    t1 = time.monotonic()
    c1 = cpu_s(pid)
    fk1 = cpu_s(fake.pid)
    pg1 = pg_cpu_s()
    muts = [x for x in fake.log() if x["status"] == 200]
    st = fake.stats()
    lists = (st.get("by_op") or {}).get("ListAccessGrants")
    return d, {
        "wall_s": t1 - t0, "wall_after_ready_s": t1 - t_ready, "daemon_cpu_s": c1 - c0,
        "fake_cpu_s": fk1 - fk0, "postgres_cpu_s": pg1 - pg0, "mutations": len(muts), "daemon_vmhwm_kb": vm(pid, "VmHWM"),
        "list_calls": lists, "in_fake": len(fake.grants()),
    }


def commit_latency(e, fake, d, iid, users, ds, tag, count):
    """3.: `count` single-subscription commits one after the other."""
    ps = Psql(e.db)
    uids = [int(x) for x in e.sql("SELECT id FROM s3grant.users WHERE username LIKE '%s%%' ORDER BY id"
                                  % tag).split()]
    assert len(uids) >= count, (len(uids), count)
    since = 0
    for x in fake.log():
        since = max(since, x["seq"] + 1)
    lat, width = [], []
    for i in range(count):
        out = ps.run("BEGIN;\nINSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
                     " VALUES (%d, %d, 'read') RETURNING id;\n"
                     "SELECT extract(epoch FROM clock_timestamp());\nCOMMIT;\n"
                     "SELECT extract(epoch FROM clock_timestamp());" % (uids[i], ds))
        sid, t_pre, t_post = int(out[0]), float(out[1]), float(out[2])
        principal = "arn:aws:iam::%s:user/%s%d" % (ACCOUNT, tag, i)
        found = None
        deadline = time.monotonic() + 30
        while found is None:
            r = fake._call("GET", "/__fake/log?since=%d" % since)
            for x in r["entries"]:
                since = max(since, x["seq"] + 1)
                if x["op"] == "CreateAccessGrant" and x.get("grantee") == principal and x["status"] == 200:
                    found = x
            if found is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no CreateAccessGrant for %s: %s" % (principal, d.stderr[-2000:]))
                time.sleep(0.005)   # the fake's log time is the measure; polling only finds it
        lat.append(1000 * (fake_time(found) - t_pre))
        width.append(1000 * (t_post - t_pre))
        # the pass that made it finishes before the next commit (isolated samples)
        wait_until(lambda: ps.run("SELECT status FROM s3grant.subscriptions WHERE id = %d;" % sid) == ["active"],
                   60, "subscription %d active" % sid, interval=0.005)
    ps.close()
    return {"n": len(lat), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat),
            "min_ms": min(lat), "mean_ms": statistics.mean(lat), "commit_bracket_ms_max": max(width)}


def phase_latency_small(e_factory, count):
    log("phase 3: commit -> CreateAccessGrant, fake at 0 ms, %d commits (small integration)" % count)
    fake = S3ControlFake(latency_ms=0)
    fake.start()
    try:
        fake.add_state(instances=[{}])
        e = e_factory(fake)
        iid = e.create_integration(name="lat")
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'l' || i, 'arn:aws:iam::%s:user/l' || i"
              " FROM generate_series(0, %d) i" % (ACCOUNT, count - 1))
        ds = e.datasource(iid, "bucket-lat/data")
        # one subscription before the start, so the first pass ends in an observable row
        e.user("warm", "arn:aws:iam::%s:user/warm" % ACCOUNT)
        e.subscribe("warm", ds)
        d = start_daemon(e)
        e.wait_status(iid, "enabled", timeout=60)
        wait_until(lambda: e.sql("SELECT status FROM s3grant.subscriptions").strip() == "active", 60,
                   "warm-up grant")
        r = commit_latency(e, fake, d, iid, count, ds, "l", count)
        stop_gracefully(d)
        e.close()
        return r
    finally:
        fake.stop()


def phase_ceiling(n, latency_ms):
    """n CreateAccessGrant by bench/bench_aws -- the daemon's own AWS layer
    (aws/: SigV4, the libcurl engine on libuv, XML) with 64 in flight and
    nothing else: no reconciler, no Postgres -- through a fresh warm fake and
    front at the same latency: what this machine and harness allow a client
    built on that layer, next to which the full reconcile is read."""
    log("ceiling: %d creates by bench/bench_aws (the AWS layer alone), fake at %d ms" % (n, latency_ms))
    real_fake, fake = start_fake(latency_ms)
    try:
        fake.add_state(instances=[{}])
        front = getattr(fake, "front", None)
        if front:
            front.figures()
        r = bench_aws_creates(fake.endpoint, n)
        return {"grants_per_s": r["rps"], "errors": r["errors"], "cpu_us_per_req": r["cpu_us_per_req"],
                "front": front.figures() if front else None}
    finally:
        stop_fake(real_fake, fake)


def phase_baseline(keys, latency_ms, threads):
    """The same creates by boto3, `threads` threads, one shared client (botocore
    clients are thread-safe), a fresh fake at the same latency."""
    import concurrent.futures
    from botocore.config import Config

    log("baseline: %d creates by boto3 with %d threads, fake at %d ms" % (len(keys), threads, latency_ms))
    real_fake, fake = start_fake(latency_ms)
    try:
        fake.add_state(instances=[{}])
        c = s3control_client(fake, max_attempts=5, max_pool_connections=threads)
        loc = c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://",
                                              IAMRoleArn="arn:aws:iam::%s:role/s3grantd-location" % ACCOUNT)
        loc_id = loc["AccessGrantsLocationId"]
        errors = []
        nxt = [0]
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(keys):
                    return
                gtype, grantee, perm, sub = keys[i]
                kw = dict(AccountId=ACCOUNT, AccessGrantsLocationId=loc_id,
                          Grantee={"GranteeType": gtype, "GranteeIdentifier": grantee}, Permission=perm)
                if sub:
                    kw["AccessGrantsLocationConfiguration"] = {"S3SubPrefix": sub}
                try:
                    c.create_access_grant(**kw)
                except Exception as ex:  # noqa: BLE001 -- counted and shown
                    errors.append(repr(ex))

        me = os.getpid()
        a = Sample({"boto3": me, "fake": fake.pid})
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            fs = [ex.submit(worker) for _ in range(threads)]
            for f in fs:
                f.result()
        b = Sample({"boto3": me, "fake": fake.pid})
        wall, cpu, busy = delta(a, b)
        ok = len(keys) - len(errors)
        st = fake.stats()
        return {"grants": ok, "errors": len(errors), "first_error": errors[0] if errors else None,
                "wall_s": wall, "grants_per_s": ok / wall, "client_cpu_s": cpu["boto3"],
                "client_cpu_us_per_grant": 1e6 * cpu["boto3"] / max(ok, 1), "fake_cpu_s": cpu["fake"],
                "fake_core_use": cpu["fake"] / wall, "machine_busy": busy,
                "fake_max_inflight": st.get("max_inflight"), "in_fake": len(fake.grants())}
    finally:
        stop_fake(real_fake, fake)


# --------------------------------------------------------------------------- main

def main():
    old_nice = None
    if ARGS.autogroup_nice is not None:
        old_nice = set_autogroup_nice(ARGS.autogroup_nice)
    try:
        run()
    finally:
        if old_nice is not None:
            set_autogroup_nice(old_nice)


def autogroup():
    try:
        with open("/proc/self/autogroup") as f:
            return f.read().strip()
    except OSError:
        return "?"


def run():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    import reconlib
    binary = os.path.join(ARGS.build, "daemon", "s3grantd")
    if not os.path.exists(binary):
        sys.exit("no %s: build first (cmake -DCMAKE_BUILD_TYPE=Release)" % binary)
    cache = os.path.join(ARGS.build, "CMakeCache.txt")
    btype = "?"
    if os.path.exists(cache):
        for line in open(cache):
            if line.startswith("CMAKE_BUILD_TYPE:"):
                btype = line.split("=", 1)[1].strip()
    head = subprocess.run(["git", "-C", SRC, "log", "-1", "--format=%h %<(50,trunc)%s"], capture_output=True,
                          text=True).stdout.strip()
    head += "; s3grantd built %s" % time.strftime("%H:%M:%S", time.gmtime(os.path.getmtime(binary)))
    users = ARGS.users
    sources = ARGS.grants // users
    n = users * sources
    log("build %s (%s), HEAD %s, load average %s" % (ARGS.build, btype, head, os.getloadavg()))

    envs = []
    pg = PgTmp().start()
    global PG_DATA, PG
    PG_DATA = os.path.join(pg.dir, "data")
    PG = pg
    if ARGS.pg_stats:
        pg_stats_enable(pg)
    res = {"build": ARGS.build, "build_type": btype, "head": head, "load_before": os.getloadavg(),
           "autogroup": autogroup()}
    try:
        os.environ.update(PGHOST=pg.host, PGPORT=str(pg.port or 5432), PGUSER="postgres")
        conf_extra = ""   # reconlib.Env.conf: [aws] max_in_flight = 64, [reconcile] rate_limit = 10000

        def env_for(fake):
            e = reconlib.Env(fake, prefix="bench", conf_extra=conf_extra)
            envs.append(e)
            return e

        # ---- 1, 2, 4 on one fake at 10 ms
        real_fake, fake = start_fake(ARGS.latency_ms)
        try:
            fake.add_state(instances=[{}])
            e = env_for(fake)
            conf = e.conf()
            assert "max_in_flight = %d\n" % IN_FLIGHT in conf and "rate_limit = 10000\n" in conf, conf
            iid = e.create_integration(name="bench")
            t = time.monotonic()
            seed(e, iid, users, sources)
            log("seeded %d subscriptions in %.1fs" % (n, time.monotonic() - t))
            d, res["full"] = phase_full(e, fake, iid, n)
            keys = sorted((g["grantee_type"], g["grantee"], g["permission"], g.get("sub_prefix") or "")
                          for g in fake.grants())
            d, res["resync"] = phase_resync(e, fake, iid, n, d)
            if ARGS.big_commits:
                log("phase 3b: commit -> CreateAccessGrant on the %d-grant integration, fake at 0 ms" % n)
                fake.config(latency_ms=0)
                if getattr(fake, "front", None):
                    fake.front.no_latency()
                # n grants fill the instance's quota: make room first (u0's grants go)
                e.sql("DELETE FROM s3grant.subscriptions WHERE user_id = (SELECT id FROM s3grant.users"
                      " WHERE username = 'u0')")
                wait_until(lambda: len(fake.grants()) == n - sources, 300, "room made")
                e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'b' || i,"
                      " 'arn:aws:iam::%s:user/b' || i FROM generate_series(0, %d) i" % (ACCOUNT, ARGS.big_commits - 1))
                ds = e.datasource(iid, "bucket-big/extra")
                try:
                    res["latency_big"] = commit_latency(e, fake, d, iid, ARGS.big_commits, ds, "b",
                                                        ARGS.big_commits)
                except Exception as ex:  # noqa: BLE001 -- reported in the table
                    res["latency_big"] = {"error": str(ex)[:300]}
                    log("phase 3b failed: %s" % ex)
            # the whole life of the daemon that resynced: start-up resync,
            # the passes after it and phase 3b's scoped passes
            res["resync"]["daemon_vmhwm_end_kb"] = vm(d.proc.pid, "VmHWM")
            stop_gracefully(d)
            e.close()
        finally:
            stop_fake(real_fake, fake)

        # ---- 3 on a small integration, fake at 0 ms
        if ARGS.commits:
            try:
                res["latency"] = phase_latency_small(env_for, ARGS.commits)
            except Exception as ex:  # noqa: BLE001 -- reported in the table
                res["latency"] = {"error": str(ex)[:300]}
                log("phase 3 failed: %s" % ex)

        # ---- the AWS layer alone: the same number of creates, fresh fake at the same latency
        if not ARGS.skip_ceiling:
            res["ceiling"] = phase_ceiling(n, ARGS.latency_ms)

        # ---- the boto3 baseline: the same creates, fresh fake at the same latency
        if not ARGS.skip_baseline:
            res["baseline"] = phase_baseline(keys, ARGS.latency_ms, ARGS.baseline_threads)
    finally:
        for e in envs:
            e.close()   # kills any daemon still running
        pg.stop()
    res["load_after"] = os.getloadavg()
    report(res, n)
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(res, f, indent=2)


def report(r, n):
    bound = IN_FLIGHT / (ARGS.latency_ms / 1000.0)
    f, s = r["full"], r["resync"]
    print("command: " + " ".join(["python3"] + sys.argv))
    rows = [("build", "%s (%s)" % (r["build"], r["build_type"]), "HEAD %s" % r["head"])]
    rows.append(("full reconcile: grants created", "%d (fake holds %d)" % (f["grants"], f["in_fake"]),
                 "%d desired" % n))
    rows.append(("full reconcile: wall", "%.1f s" % f["wall_s"], "bound %.1f s at %d/s" % (n / bound, bound)))
    rows.append(("full reconcile: grants/s", "%.0f (%.1f %% of bound)" % (f["grants_per_s"],
                                                                    100 * f["grants_per_s"] / bound),
                 "bound %.0f/s, target >= %.0f/s (90 %%)" % (bound, 0.9 * bound)))
    rows.append(("  same, fake's first->last create", "%.0f/s" % f["fake_window_grants_per_s"],
                 "creates per second p10/p50/p90/max: %s" % "/".join("%.0f" % v for v in
                                                                 f["per_second_p10_p50_p90_max"])))
    rows.append(("  until recorded in the DB", "%.1f s (%.0f grants/s), daemon CPU %.1f s"
                 % (f["recorded_wall_s"], n / f["recorded_wall_s"], f["daemon_cpu_to_recorded_s"]),
                 "intents resolved, statuses active, health row"))
    if "baseline" in r:
        b = r["baseline"]
        rows.append(("  baseline boto3 %d threads" % ARGS.baseline_threads,
                     "%.0f/s (%d ok, %d errors)" % (b["grants_per_s"], b["grants"], b["errors"]),
                     "daemon = %.2fx boto3" % (f["grants_per_s"] / b["grants_per_s"])))
    if "ceiling" in r:
        c = r["ceiling"]
        cf = c.get("front") or {}
        rows.append(("  the AWS layer alone (bench_aws)", "%.0f/s (%.1f %% of bound, %d errors), %.0f us CPU/req"
                     % (c["grants_per_s"], 100 * c["grants_per_s"] / bound, c["errors"], c["cpu_us_per_req"]),
                     "no reconciler, no Postgres; server hold %.3f ms, client share %.3f ms"
                     % (cf.get("hold_ms", float("nan")), cf.get("turnaround_ms", float("nan")))))
    rows.append(("daemon CPU per grant", "%.0f us (%.1f s total)" % (f["daemon_cpu_us_per_grant"], f["daemon_cpu_s"]),
                 ("boto3 client %.0f us/grant" % r["baseline"]["client_cpu_us_per_grant"]) if "baseline" in r else ""))
    rows.append(("  mean requests in flight", "%.0f of %d (rate x %d ms, Little's law)"
                 % (f["grants_per_s"] * ARGS.latency_ms / 1000.0, IN_FLIGHT, ARGS.latency_ms),
                 "64 needed for the bound"))
    fr = f.get("front")
    if fr:
        rows.append(("  server: request in -> answer out", "%.3f ms (late %.3f ms mean, %.2f max)"
                     % (fr["hold_ms"], fr["late_ms"], fr["max_late_ms"]),
                     "bench/latency_front at %d ms; the fake's own work (%.2f ms mean) inside it"
                     % (ARGS.latency_ms, f["fake_ms_per_request"])))
        rows.append(("    of the lateness: the fake's", "%.3f ms (%d answers the fake gave after %d ms)"
                     % (fr["upstream_late_ms"], fr["upstream_late"], ARGS.latency_ms),
                     "the front's own: %.3f ms" % (fr["late_ms"] - fr["upstream_late_ms"])))
        rows.append(("  answer out -> next request in", "%.3f ms" % fr["turnaround_ms"],
                     "the daemon's share of a round trip (kernel to kernel, loopback)"))
    else:
        rows.append(("  fake: mean time per request", "%.2f ms (arrival to close)" % f["fake_ms_per_request"],
                     "latency %d ms (the fake's own timer): the rest of a round trip is the daemon's and the "
                     "network's" % ARGS.latency_ms))
        rows.append(("  answer -> next request, same connection", "%.2f ms" % f["fake_turnaround_ms"],
                     "the daemon's turnaround, both kernels and the fake's intake"))
    rows.append(("Postgres CPU: creates / until recorded", "%.1f s / %.1f s" % (f["postgres_cpu_s"],
                                                                          f["postgres_cpu_to_recorded_s"]),
                 "%.0f us / %.0f us per grant" % (1e6 * f["postgres_cpu_s"] / max(f["grants"], 1),
                                                  1e6 * f["postgres_cpu_to_recorded_s"] / max(f["grants"], 1))))
    rows.append(("fake CPU during full reconcile", "%.2f cores (%.0f us/req), max in flight %s"
                 % (f["fake_core_use"], 1e6 * f["fake_cpu_s"] / max(f["create_calls"], 1), f["fake_max_inflight"]),
                 "1.00 = the fake (one Node thread) is saturated"))
    if "baseline" in r:
        b = r["baseline"]
        rows.append(("fake CPU during baseline", "%.2f cores, max in flight %s" % (b["fake_core_use"],
                                                                               b["fake_max_inflight"]), ""))
    rows.append(("machine busy (2 cores) full / baseline", "%.0f %%" % (100 * f["machine_busy"])
                 + (" / %.0f %%" % (100 * r["baseline"]["machine_busy"]) if "baseline" in r else ""),
                 "load avg before %.1f; %s" % (r["load_before"][0], r["autogroup"])))
    rows.append(("no-drift resync: wall", "%.2f s (%.2f s after READY)" % (s["wall_s"], s["wall_after_ready_s"]),
                 "%d grants listed; >= %.1f s of pure fake latency (%d pages x %d ms)"
                 % (n, (n + 999) // 1000 * ARGS.latency_ms / 1000.0, (n + 999) // 1000, ARGS.latency_ms)))
    rows.append(("no-drift resync: daemon CPU", "%.2f s (%.1f us/grant)" % (s["daemon_cpu_s"],
                                                                        1e6 * s["daemon_cpu_s"] / n),
                 "%d mutating calls (want 0); Postgres CPU %.2f s" % (s["mutations"], s["postgres_cpu_s"])))
    for key, label in (("latency", "commit->create (small integration)"),
                       ("latency_big", "commit->create (%d-grant integration)" % (n - n // ARGS.users))):
        if key in r and "error" in r[key]:
            rows.append((label + " p50/p99", "FAILED: " + r[key]["error"][:80], "target p99 <= 20 ms"))
        elif key in r:
            x = r[key]
            rows.append((label + " p50/p99",
                         "%.1f / %.1f ms (n=%d, max %.1f)" % (x["p50_ms"], x["p99_ms"], x["n"], x["max_ms"]),
                         "target p99 <= 20 ms"))
    rows.append(("peak RSS (VmHWM) creating %d" % n, "%.1f MB" % (f["daemon_vmhwm_kb"] / 1024.0),
                 "target <= 64 MB"))
    rows.append(("peak RSS (VmHWM) resyncing %d" % n, "%.1f MB" % (s["daemon_vmhwm_kb"] / 1024.0),
                 "target <= 64 MB"))
    if s.get("daemon_vmhwm_end_kb"):
        rows.append(("  same daemon, its whole run (to its stop)", "%.1f MB" % (s["daemon_vmhwm_end_kb"] / 1024.0),
                     "target <= 64 MB"))
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    print("%-*s  %-*s  %s" % (w0, "figure", w1, "measured", "bound / baseline"))
    print("-" * (w0 + w1 + 40))
    for a, b, c in rows:
        print("%-*s  %-*s  %s" % (w0, a, w1, b, c))
    for key, label in (("pg_top_creates", "creates"), ("pg_top_recorded", "creates until recorded")):
        if f.get(key):
            print("\nPostgres statements, %s (pg_stat_statements, track = all: nested ones count twice):" % label)
            print("%8s %9s %10s %8s  %s" % ("calls", "rows", "total ms", "us/grant", "query"))
            for calls, nrows, ms, us, q in f[key]:
                print("%8d %9d %10.1f %8.1f  %s" % (calls, nrows, ms, us, q[:110]))


if __name__ == "__main__":
    main()
