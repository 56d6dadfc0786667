#!/usr/bin/env python3
"""bench_aws.py -- the AWS client layer against the S3 Control fake, side by side with boto3.

Starts tests/fakes/s3control/server.js (through tests/lib/fakes.py), then for each latency
(default 0 and 10 ms) and operation (default CreateAccessGrant) runs, in the same process
tree and one after the other:

  C      bench/bench_aws (aws/client.h + aws/s3control.h + aws/credprov.h static keys: the
         daemon's pipeline) -- N requests, K in flight, CPU from its own getrusage;
  boto3  the same N requests through a boto3 `s3control` client (standard retries,
         max_pool_connections=K) from a K-thread ThreadPoolExecutor -- CPU from this
         Python process's getrusage over the timed phase.

At a latency above 0 the answers are held by bench/latency_front, a C relay in front of
the fake (which then runs at 0 ms): each answer leaves exactly the latency after its
request reached the front, and the front measures the client's share of each round trip
(answer out -> the client's next request in). The fake's own latency knob times a hold
from when its one JavaScript thread reads the request, which under 6,000 requests/s is
0.5-1 ms after the request arrived: its answers left 11.05 ms after the request's packet
at 10 ms, capping any client at 90.5 % of the bound (--fake-timer still uses it).

The fake is reset before every phase (same grants, same quota headroom: 100,000 per
instance) and its own CPU per request is read from /__fake/stats. An untimed C run of
each operation comes first (--warmup): the fake's first ~10,000 requests cost it ~1.7x
the steady state (V8 compiling, heap growing), which would otherwise land on row one. It also runs
bench_sigv4 (signatures/s on one core with the key cached), bench_http (the HTTP engine
alone, for scale: what the AWS layer adds is the difference) and bench_aws against its own
canned C server (rows "C (canned)": the client at full speed, nothing verified). Prints one table, and with
--json one JSON object per row.

  python3 bench/bench_aws.py --build build-rel [--requests 10000] [--in-flight 64]
                             [--latencies 0,10] [--ops create,get] [--json] [--fake-timer]

The bench needs -DS3G_BENCH=ON. Keys are the fake's default example keys; nothing
secret is printed.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))

from fakes import ACCOUNT, S3ControlFake, s3control_client  # noqa: E402
from benchlib import front_fake, set_autogroup_nice  # noqa: E402

LOCATION_ROLE = "arn:aws:iam::%s:role/bench-location" % ACCOUNT
GET_POOL = 64


def grant_args(tag, i):
    """The grant bench_aws.c makes for index i (same strings)."""
    return dict(AccountId=ACCOUNT, AccessGrantsLocationId="default",
                AccessGrantsLocationConfiguration={"S3SubPrefix": "bench-bucket/%s%d/*" % (tag, i)},
                Grantee={"GranteeType": "IAM",
                         "GranteeIdentifier": "arn:aws:iam::%s:role/bench-%s%d" % (ACCOUNT, tag, i)},
                Permission="READ")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def fake_cost(fake):
    stats = fake.stats()
    reqs = max(1, stats["requests"])
    front = getattr(fake, "front", None)
    fr = front.figures() if front else None
    return {"fake_cpu_us_per_req": round((stats["cpu_user_us"] + stats["cpu_system_us"]) / reqs, 1),
            "fake_max_inflight": stats["max_inflight"],
            # request in -> answer out: the front's (the latency) when there is one,
            # else the fake's own, arrival to close (its latency knob included)
            "fake_hold_ms": round(fr["hold_ms"] if fr else stats.get("resident_ms", 0.0) / reqs, 3),
            # answer out -> the client's next request (the front measures it)
            "client_turnaround_ms": round(fr["turnaround_ms"], 3) if fr else None,
            "fake_cpu_share": round((stats["cpu_user_us"] + stats["cpu_system_us"]) / max(1, stats["wall_us"]), 2)}


def prepare(fake, latency):
    """Reset the fake; behind a front the front holds the answers, not the fake."""
    fake.reset()
    front = getattr(fake, "front", None)
    fake.config(latency_ms=0 if front else latency)


def clear_stats(fake):
    fake.clear_stats()
    front = getattr(fake, "front", None)
    if front:
        front.figures()


def run_c(binary, fake, op, n, k, latency):
    prepare(fake, latency)
    clear_stats(fake)
    la = loadavg()
    out = subprocess.run([binary, fake.endpoint, str(n), str(k), op], check=False, capture_output=True,
                         text=True, timeout=3600)
    if not out.stdout.strip():
        raise RuntimeError("bench_aws failed: %s" % out.stderr.strip())
    r = json.loads(out.stdout.strip().splitlines()[-1])
    row = {"client": "C s3grantd", "op": op, "latency_ms": latency, "requests": n, "in_flight": k,
           "rps": r["rps"], "cpu_us_per_req": r["cpu_us_per_req"], "errors": r["errors"],
           "retries": r["retries"], "seconds": r["seconds"], "loadavg": la}
    if r.get("first_error"):
        row["first_error"] = r["first_error"]
    row.update(fake_cost(fake))
    return row


def run_canned(binary, op, n, k):
    """bench_aws against its own canned C server: the client's cost at full speed."""
    la = loadavg()
    out = subprocess.run([binary, "canned", str(n), str(k), op], check=False, capture_output=True, text=True,
                         timeout=3600)
    if not out.stdout.strip():
        raise RuntimeError("bench_aws canned failed: %s" % out.stderr.strip())
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"client": "C (canned)", "op": op, "latency_ms": 0, "requests": n, "in_flight": k, "rps": r["rps"],
            "cpu_us_per_req": r["cpu_us_per_req"], "errors": r["errors"], "retries": r["retries"],
            "seconds": r["seconds"], "loadavg": la, "fake_cpu_us_per_req": None, "fake_max_inflight": None,
            "fake_hold_ms": None}


def run_boto3(fake, op, n, k, latency):
    import botocore.exceptions

    prepare(fake, latency)
    client = s3control_client(fake, max_attempts=3, max_pool_connections=k)
    try:
        client.create_access_grants_instance(AccountId=ACCOUNT)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "AccessGrantsInstanceAlreadyExists":
            raise
    client.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://",
                                         IAMRoleArn=LOCATION_ROLE)
    ids = []
    if op == "get":
        for i in range(GET_POOL):
            ids.append(client.create_access_grant(**grant_args("get", i))["AccessGrantId"])

    errors = []

    def one(i):
        try:
            if op == "create":
                client.create_access_grant(**grant_args("p", i))
            else:
                client.get_access_grant(AccountId=ACCOUNT, AccessGrantId=ids[i % len(ids)])
        except Exception as e:  # noqa: BLE001 -- counted and reported
            errors.append(repr(e))

    pool = ThreadPoolExecutor(max_workers=k)
    list(pool.map(lambda i: None, range(k)))  # threads exist before the clock starts
    clear_stats(fake)
    la = loadavg()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    list(pool.map(one, range(n), chunksize=1))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    pool.shutdown()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    row = {"client": "boto3", "op": op, "latency_ms": latency, "requests": n, "in_flight": k,
           "rps": round(n / wall), "cpu_us_per_req": round(cpu * 1e6 / n, 1), "errors": len(errors),
           "retries": None, "seconds": round(wall, 3), "loadavg": la}
    if errors:
        row["first_error"] = errors[0][:300]
    row.update(fake_cost(fake))
    return row


def sigv4_rate(binary):
    out = subprocess.run([binary, "1", "cached"], check=True, capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == "cached":
            return float(parts[2])
    raise RuntimeError("bench_sigv4: unexpected output %r" % out.stdout)


def http_floor(binary, n, k):
    """bench_http: the HTTP engine alone (GET, fixed 5-byte answer from a C server)."""
    out = subprocess.run([binary, str(n), str(k)], check=True, capture_output=True, text=True, timeout=600)
    rate = cpu = None
    for tok in out.stdout.replace("\n", " ").split():
        if tok.startswith("rate="):
            rate = float(tok[5:])
        elif tok.startswith("cpu="):
            cpu = float(tok[4:])
    return rate, cpu


OP_NAMES = {"create": "CreateAccessGrant", "get": "GetAccessGrant"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"), help="build directory (-DS3G_BENCH=ON)")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--latencies", default="0,10")
    ap.add_argument("--ops", default="create")
    ap.add_argument("--warmup", type=int, default=5000,
                    help="untimed C requests of each op first (the fake's JIT and heap warm up)")
    ap.add_argument("--autogroup-nice", type=int, default=None,
                    help="set this session's scheduler autogroup nice (e.g. -10; needs root) for the run and "
                         "restore it after: with sched_autogroup on, CPU is shared per session, and the fake, "
                         "the C bench and boto3 all sit in this one")
    ap.add_argument("--no-boto3", action="store_true")
    ap.add_argument("--fake-timer", action="store_true",
                    help="hold answers with the fake's own latency_ms instead of bench/latency_front")
    ap.add_argument("--json", action="store_true", help="also print one JSON object per row")
    a = ap.parse_args()
    bench_aws = os.path.join(a.build, "bench", "bench_aws")
    bench_sigv4 = os.path.join(a.build, "bench", "bench_sigv4")
    bench_http = os.path.join(a.build, "bench", "bench_http")
    for b in (bench_aws, bench_sigv4, bench_http, os.path.join(a.build, "bench", "latency_front")):
        if not os.access(b, os.X_OK):
            sys.exit("%s missing: configure with -DS3G_BENCH=ON and build" % b)

    old_nice = None
    if a.autogroup_nice is not None:
        old_nice = set_autogroup_nice(a.autogroup_nice)
    try:
        return run_all(a, bench_aws, bench_sigv4, bench_http)
    finally:
        if old_nice is not None:
            set_autogroup_nice(old_nice)


def run_all(a, bench_aws, bench_sigv4, bench_http):
    rows = []
    rate = sigv4_rate(bench_sigv4)
    print("SigV4 signatures/s on one core, key cached (bench_sigv4 1 cached): %.0f  (target >= 300,000)"
          % rate)
    hrate, hcpu = http_floor(bench_http, 20000, a.in_flight)
    print("HTTP engine alone (bench_http 20000 %d: GET, 5-byte answer, C server): %.0f req/s, %.1f us CPU/request"
          % (a.in_flight, hrate, hcpu))
    for op in a.ops.split(","):
        rows.append(run_canned(bench_aws, op, a.requests, a.in_flight))
    with S3ControlFake() as fake:
        for op in a.ops.split(","):
            if a.warmup:
                run_c(bench_aws, fake, op, a.warmup, a.in_flight, 0)
        for latency in [int(x) for x in a.latencies.split(",")]:
            server = front_fake(fake, a.build, latency) if latency and not a.fake_timer else fake
            try:
                for op in a.ops.split(","):
                    rows.append(run_c(bench_aws, server, op, a.requests, a.in_flight, latency))
                    if not a.no_boto3:
                        rows.append(run_boto3(server, op, a.requests, a.in_flight, latency))
            finally:
                if server is not fake:
                    server.front.stop()

    print("%d requests per row, %d in flight, fake reset before each row; CPU = getrusage of the client"
          " process only (the fake is another process: fake_cpu is its own); autogroup nice %s"
          % (a.requests, a.in_flight, "unchanged" if a.autogroup_nice is None else a.autogroup_nice))
    print("latency rows: answers held by bench/latency_front, %s" %
          ("not used (--fake-timer: the fake's own timer)" if a.fake_timer else
           "the request's arrival at the front + latency (the fake at 0 ms behind it)"))
    # round trip = K / (req/s) by Little's law; beside the server's hold it
    # shows the client's share (measured by the front: answer out -> next request in)
    hdr = ("op", "lat ms", "client", "req/s", "% of K/lat", "client CPU us/req", "errors", "fake CPU us/req",
           "fake inflight max", "round trip ms", "server hold ms", "client share ms", "load avg")
    fmt = "%-18s %6s %-11s %8s %10s %17s %6s %15s %17s %13s %14s %15s %8s"
    print(fmt % hdr)
    for r in rows:
        bound = "" if r["latency_ms"] == 0 else "%.0f %%" % (100.0 * r["rps"] / (r["in_flight"] * 1000.0 /
                                                                                 r["latency_ms"]))
        print(fmt % (OP_NAMES[r["op"]], r["latency_ms"], r["client"], "%.0f" % r["rps"], bound,
                     "%.1f" % r["cpu_us_per_req"], r["errors"],
                     "-" if r["fake_cpu_us_per_req"] is None else "%.1f" % r["fake_cpu_us_per_req"],
                     "-" if r["fake_max_inflight"] is None else r["fake_max_inflight"],
                     "%.2f" % (1000.0 * r["in_flight"] / r["rps"]) if r["rps"] else "-",
                     "-" if r.get("fake_hold_ms") is None else "%.2f" % r["fake_hold_ms"],
                     "-" if r.get("client_turnaround_ms") is None else "%.2f" % r["client_turnaround_ms"],
                     "%.2f" % r["loadavg"]))
    for r in rows:
        if r.get("first_error"):
            print("%s %s %d ms: first error: %s" % (r["client"], r["op"], r["latency_ms"], r["first_error"]))
    if a.json:
        print(json.dumps({"sigv4_per_s": round(rate), "http_engine_rps": hrate, "http_engine_cpu_us": hcpu}))
        for r in rows:
            print(json.dumps(r))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
